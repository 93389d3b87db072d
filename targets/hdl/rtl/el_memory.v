// One of the core's buffers: dual-port block RAM, or (SINGLE_PORT) a single-port RAM whose one
// address is the write address in a write cycle and the read address otherwise (el_spram.v).
`default_nettype none
module el_memory #(
    parameter WIDTH = 32,
    parameter DEPTH = 256,
    parameter ADDR_BITS = (DEPTH > 1) ? $clog2(DEPTH) : 1,
    parameter SINGLE_PORT = 0,
    parameter INIT = ""
) (
    input  wire                 clk,
    input  wire [ADDR_BITS-1:0] raddr,
    output wire [WIDTH-1:0]     rdata,
    input  wire                 we,
    input  wire [ADDR_BITS-1:0] waddr,
    input  wire [WIDTH-1:0]     wdata
);
    generate
        if (SINGLE_PORT) begin : single
            el_spram #(.WIDTH(WIDTH), .DEPTH(DEPTH), .ADDR_BITS(ADDR_BITS), .INIT(INIT)) ram (
                .clk(clk), .addr(we ? waddr : raddr), .we(we), .wdata(wdata), .rdata(rdata));
        end else begin : dual
            el_ram #(.WIDTH(WIDTH), .DEPTH(DEPTH), .ADDR_BITS(ADDR_BITS), .INIT(INIT)) ram (
                .clk(clk), .raddr(raddr), .rdata(rdata), .we(we), .waddr(waddr), .wdata(wdata));
        end
    endgenerate
endmodule
`default_nettype wire
