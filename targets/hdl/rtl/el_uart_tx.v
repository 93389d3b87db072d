// A UART transmitter, 8N1, DIVISOR clock cycles a bit; takes a byte when ready.
`default_nettype none
module el_uart_tx #(
    parameter DIVISOR = 104
) (
    input  wire       clk,
    input  wire       valid,
    output wire       ready,
    input  wire [7:0] data,
    output wire       tx
);
    localparam CB = $clog2(DIVISOR + 1);
    reg [9:0]    frame = 10'h3FF;    // stop, data, start: shifted out LSB first
    reg [3:0]    bits_left = 0;
    reg [CB-1:0] wait_cycles = 0;
    assign ready = bits_left == 0;
    assign tx = frame[0];
    always @(posedge clk) begin
        if (ready) begin
            if (valid) begin frame <= {1'b1, data, 1'b0}; bits_left <= 10; wait_cycles <= DIVISOR - 1; end
        end else if (wait_cycles != 0)
            wait_cycles <= wait_cycles - 1'b1;
        else begin
            frame <= {1'b1, frame[9:1]};
            bits_left <= bits_left - 1'b1;
            wait_cycles <= DIVISOR - 1;
        end
    end
endmodule
`default_nettype wire
