// stochastic_shift (docs/numerics.md §3), given its draw u: floor((p + r) / 2^s) with r the top s
// bits of u (s <= 32) or u shifted left by s - 32 (s > 32). Shifts above 62 first floor-drop
// s - 62 bits (at most 63) so p + r stays inside int64. s <= 0 is the exact p << -s and draws
// nothing: `draws` tells the caller whether u was consumed (edgelearn.numerics.shift_with_draw).
`include "el_contract.vh"
`default_nettype none
module el_stochastic_shift (
    input  wire signed [63:0] p,
    input  wire signed [8:0]  s,
    input  wire        [31:0] u,
    output wire signed [63:0] y,
    output wire               draws
);
    localparam signed [8:0] MAX_SHIFT = 9'sd`EL_SR_MAX_SHIFT;
    assign draws = s > 9'sd0;
    wire        [8:0]  excess = s - MAX_SHIFT;
    wire        [6:0]  drop = (s > MAX_SHIFT) ? ((excess > 9'd63) ? 7'd63 : excess[6:0]) : 7'd0;
    wire signed [63:0] kept = p >>> drop;
    wire        [6:0]  shift = (s > MAX_SHIFT) ? MAX_SHIFT[6:0] : s[6:0];
    wire        [63:0] wide_u = {32'd0, u};
    wire signed [63:0] r = (shift <= 7'd32) ? $signed(wide_u >> (7'd32 - shift)) : $signed(wide_u << (shift - 7'd32));
    wire signed [63:0] rounded = (kept + r) >>> shift;
    wire        [6:0]  left = 7'd0 - s[6:0];         // -s, for -63 <= s <= 0
    assign y = draws ? rounded : (p <<< left);
endmodule
`default_nettype wire
