// round_shift (docs/numerics.md §3): x * 2^-s rounded to nearest, ties toward +inf (add half,
// then an arithmetic shift); a negative s is an exact left shift. Defined for -63 <= s <= 62,
// like edgelearn.numerics.round_shift; a constant s leaves only wiring and one adder.
`default_nettype none
module el_round_shift (
    input  wire signed [63:0] x,
    input  wire signed [7:0]  s,
    output wire signed [63:0] y
);
    wire               right = s > 8'sd0;
    wire        [7:0]  amount = right ? s : -s;
    wire signed [63:0] half = right ? (64'sd1 <<< (amount - 8'd1)) : 64'sd0;
    wire signed [63:0] biased = x + half;
    assign y = right ? (biased >>> amount) : (x <<< amount);
endmodule
`default_nettype wire
