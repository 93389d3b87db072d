// A single-port RAM: one address a cycle, read or write (a write cycle leaves rdata as it was).
// yosys -spram maps it to the iCE40 UltraPlus's SPRAM (SB_SPRAM256KA, 16K x 16 per tile), which
// the bitstream cannot initialise: in simulation INIT fills it, on a board the host writes the
// model's values through the core's parameter port first (docs/fpga.md). The core never reads
// and writes it in one cycle (its issue stage waits instead).
`default_nettype none
module el_spram #(
    parameter WIDTH = 16,
    parameter DEPTH = 16384,
    parameter ADDR_BITS = (DEPTH > 1) ? $clog2(DEPTH) : 1,
    parameter INIT = ""
) (
    input  wire                 clk,
    input  wire [ADDR_BITS-1:0] addr,
    input  wire                 we,
    input  wire [WIDTH-1:0]     wdata,
    output reg  [WIDTH-1:0]     rdata
);
    reg [WIDTH-1:0] mem [0:DEPTH-1];
`ifndef SYNTHESIS
    initial if (INIT != "") $readmemh(INIT, mem);
`endif
    always @(posedge clk) begin
        if (we)
            mem[addr] <= wdata;
        else
            rdata <= mem[addr];
    end
endmodule
`default_nettype wire
