// The triangle surrogate (docs/numerics.md §5): phi(x, k) = max(0, ONE - round_shift(|x|, k)),
// height 1 and half-width 2^k membrane units, x = U - th in Q16, k in -8..8. WIDTH: the bits x
// needs (the datapath's U - th has 34, |U - th| < 2^32 by docs/numerics.md §8; the golden vectors' 64).
`include "el_contract.vh"
`default_nettype none
module el_surrogate #(
    parameter WIDTH = 64
) (
    input  wire signed [WIDTH-1:0] x,
    input  wire signed [7:0]       k,
    output wire signed [31:0]      phi         // 0 .. ONE
);
    wire signed [WIDTH-1:0] absolute = x[WIDTH-1] ? -x : x;
    wire signed [63:0] magnitude = {{(64 - WIDTH){1'b0}}, absolute};
    wire signed [63:0] scaled;
    el_round_shift distance (.x(magnitude), .s(k), .y(scaled));
    wire signed [63:0] height = `EL_ONE - scaled;
    assign phi = (height > 64'sd0) ? height[31:0] : 32'sd0;
endmodule
`default_nettype wire
