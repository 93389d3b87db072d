// apply_leak_grad (docs/numerics.md §5): a = clamp(a - SR(g, shift), 0, ONE), with a draw only when
// g is not 0 (g = 0 leaves a as it is). The datapath's stochastic rounding unit gives
// lowered = a - SR(g, shift).
`include "el_contract.vh"
`default_nettype none
module el_apply_leak (
    input  wire signed [31:0] a,
    input  wire signed [63:0] g,
    input  wire signed [63:0] lowered,
    output wire signed [31:0] a_next,
    output wire               draws           // the rounding draws (when its shift is > 0)
);
    localparam signed [63:0] ONE = `EL_ONE;                                // 2^16
    wire above_one = (|lowered[62:17]) || (lowered[16] && |lowered[15:0]); // lowered > ONE, when >= 0
    wire signed [31:0] clamped = lowered[63] ? 32'sd0 : above_one ? ONE[31:0] : lowered[31:0];
    assign draws = g != 64'sd0;
    assign a_next = draws ? clamped : a;
endmodule
`default_nettype wire
