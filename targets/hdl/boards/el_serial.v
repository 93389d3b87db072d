// A model's core behind a serial line: a UART (8N1, DIVISOR clock cycles a bit) and
// el_byte_bridge, whose byte protocol carries the samples, the scores and the parameter port.
// Board tops give it a clock and two pins (boards/up5k/el_up5k_top.v).
`default_nettype none
module el_serial #(
    parameter DIVISOR = 104
) (
    input  wire clk,
    input  wire uart_rx,
    output wire uart_tx
);
    wire                            rx_valid, tx_valid, tx_ready;
    wire [7:0]                      rx_data, tx_data;
    wire                            in_valid, in_ready, in_learn, out_valid, out_ready, out_last;
    wire                            cfg_valid, cfg_ready, cfg_write, cfg_rvalid;
    wire [7:0]                      in_pixel;
    wire [`EL_MODEL_LABEL_BITS-1:0] in_label;
    wire [`EL_MODEL_SCORE_BITS-1:0] out_score;
    wire [`EL_MODEL_CFG_BITS-1:0]   cfg_addr;
    wire [31:0]                     cfg_wdata, cfg_rdata;
    el_uart_rx #(.DIVISOR(DIVISOR)) rx (.clk(clk), .rx(uart_rx), .valid(rx_valid), .data(rx_data));
    el_uart_tx #(.DIVISOR(DIVISOR)) tx (.clk(clk), .valid(tx_valid), .ready(tx_ready), .data(tx_data), .tx(uart_tx));
    el_byte_bridge #(.INPUTS(`EL_MODEL_INPUTS), .SCORE_BITS(`EL_MODEL_SCORE_BITS), .LABEL_BITS(`EL_MODEL_LABEL_BITS),
                     .CFG_BITS(`EL_MODEL_CFG_BITS)) bridge (
        .clk(clk), .rx_valid(rx_valid), .rx_data(rx_data), .tx_valid(tx_valid), .tx_ready(tx_ready), .tx_data(tx_data),
        .in_valid(in_valid), .in_ready(in_ready), .in_pixel(in_pixel), .in_learn(in_learn), .in_label(in_label),
        .out_valid(out_valid), .out_ready(out_ready), .out_score(out_score), .out_last(out_last),
        .cfg_valid(cfg_valid), .cfg_ready(cfg_ready), .cfg_write(cfg_write), .cfg_addr(cfg_addr),
        .cfg_wdata(cfg_wdata), .cfg_rvalid(cfg_rvalid), .cfg_rdata(cfg_rdata));
    el_model core (
        .clk(clk), .rst(1'b0), .in_valid(in_valid), .in_ready(in_ready), .in_pixel(in_pixel), .in_learn(in_learn),
        .in_label(in_label), .out_valid(out_valid), .out_ready(out_ready), .out_score(out_score), .out_last(out_last),
        .cfg_valid(cfg_valid), .cfg_ready(cfg_ready), .cfg_write(cfg_write), .cfg_addr(cfg_addr),
        .cfg_wdata(cfg_wdata), .cfg_rvalid(cfg_rvalid), .cfg_rdata(cfg_rdata));
endmodule
`default_nettype wire
