// A model's core on an iCE40 UltraPlus UP5K board (e.g. UPduino v3): the internal oscillator as
// the clock, the core's serial line (el_serial.v) on two pins (upduino3.pcf). CLKHF_DIV
// divides the 48 MHz oscillator ("0b00" 48, "0b01" 24, "0b10" 12, "0b11" 6 MHz: the default, below the
// core's Fmax on the UP5K, docs/fpga.md); DIVISOR = clock / baud.
`default_nettype none
module el_up5k_top #(
    parameter CLKHF_DIV = "0b11",
    parameter DIVISOR = 104
) (
    input  wire uart_rx,
    output wire uart_tx
);
    wire clk;
    SB_HFOSC #(.CLKHF_DIV(CLKHF_DIV)) oscillator (.CLKHFPU(1'b1), .CLKHFEN(1'b1), .CLKHF(clk));
    el_serial #(.DIVISOR(DIVISOR)) serial (.clk(clk), .uart_rx(uart_rx), .uart_tx(uart_tx));
endmodule
`default_nettype wire
