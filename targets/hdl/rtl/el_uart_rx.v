// A UART receiver, 8N1: the line idles high; a start bit (low), 8 data bits LSB first, a stop bit.
// Each bit is sampled in its middle, DIVISOR clock cycles apart (the clock over the baud rate).
`default_nettype none
module el_uart_rx #(
    parameter DIVISOR = 104
) (
    input  wire       clk,
    input  wire       rx,
    output reg        valid,        // one cycle: data holds a byte
    output reg  [7:0] data
);
    localparam CB = $clog2(DIVISOR + 1);
    reg [1:0]    sync = 2'b11;      // two flip-flops against metastability
    reg [CB-1:0] wait_cycles = 0;
    reg [3:0]    bit_index = 0;     // 0: idle; 1: start bit; 2..9: data; 10: stop
    always @(posedge clk) begin
        sync <= {sync[0], rx};
        valid <= 1'b0;
        if (bit_index == 0) begin
            if (!sync[1]) begin bit_index <= 1; wait_cycles <= DIVISOR / 2; end
        end else if (wait_cycles != 0)
            wait_cycles <= wait_cycles - 1'b1;
        else begin
            wait_cycles <= DIVISOR - 1;
            bit_index <= bit_index + 1'b1;
            if (bit_index == 1 && sync[1]) bit_index <= 0;          // a glitch, not a start bit
            if (bit_index >= 2 && bit_index <= 9) data <= {sync[1], data[7:1]};
            if (bit_index == 10) begin bit_index <= 0; valid <= sync[1]; end   // a framing error drops it
        end
    end
endmodule
`default_nettype wire
