// A simple dual-port RAM, one read port and one write port, synchronous read (the data of the
// address of cycle c is out in cycle c+1): what yosys maps to iCE40 EBR (SB_RAM40_4K) and ECP5
// block RAM (DP16KD). INIT names a $readmemh image of the model's values (edgelearn.hdl.generate).
`default_nettype none
module el_ram #(
    parameter WIDTH = 32,
    parameter DEPTH = 256,
    parameter ADDR_BITS = (DEPTH > 1) ? $clog2(DEPTH) : 1,
    parameter INIT = ""
) (
    input  wire                 clk,
    input  wire [ADDR_BITS-1:0] raddr,
    output reg  [WIDTH-1:0]     rdata,
    input  wire                 we,
    input  wire [ADDR_BITS-1:0] waddr,
    input  wire [WIDTH-1:0]     wdata
);
    reg [WIDTH-1:0] mem [0:DEPTH-1];
    initial if (INIT != "") $readmemh(INIT, mem);
    always @(posedge clk) begin
        if (we)
            mem[waddr] <= wdata;
        rdata <= mem[raddr];
    end
endmodule
`default_nettype wire
