// A host on the serial line of a board (targets/hdl/boards/el_serial.v), with a UART of its own. From
// stdin, hex: `n_send n_expect b0 .. b{n_send-1}` sends those bytes, waits for n_expect bytes back
// and prints them as "B r0 .. r{n_expect-1}"; 0 0 ends. DIVISOR is small: the bytes, not the baud, count.
`default_nettype none
module el_serial_tb;
    localparam DIVISOR = 8;
    reg clk = 1'b0;
    always #1 clk = ~clk;
    wire host_to_chip, chip_to_host;
    el_serial #(.DIVISOR(DIVISOR)) chip (.clk(clk), .uart_rx(host_to_chip), .uart_tx(chip_to_host));
    // the host
    reg        send_valid = 0;
    reg  [7:0] send_data = 0;
    wire       send_ready, got_valid;
    wire [7:0] got_data;
    el_uart_tx #(.DIVISOR(DIVISOR)) host_tx (.clk(clk), .valid(send_valid), .ready(send_ready), .data(send_data),
                                             .tx(host_to_chip));
    el_uart_rx #(.DIVISOR(DIVISOR)) host_rx (.clk(clk), .rx(chip_to_host), .valid(got_valid), .data(got_data));

    reg [31:0] n_send, n_expect, value;
    integer    fd, got, i;
    initial begin
        fd = $fopen("/dev/stdin", "r");
        got = $fscanf(fd, "%h %h", n_send, n_expect);
        while (got == 2 && (n_send != 0 || n_expect != 0)) begin
            for (i = 0; i < n_send; i = i + 1) begin
                got = $fscanf(fd, "%h", value);
                @(negedge clk);
                while (!send_ready) @(negedge clk);
                send_valid = 1; send_data = value[7:0];
                @(negedge clk);
                send_valid = 0;
            end
            $write("B");
            for (i = 0; i < n_expect; i = i + 1) begin
                @(posedge clk);
                while (!got_valid) @(posedge clk);
                $write(" %0h", got_data);
            end
            $write("\n");
            $fflush;
            got = $fscanf(fd, "%h %h", n_send, n_expect);
        end
        $finish;
    end
endmodule
`default_nettype wire
