// A dense layer's current from its row's exact sum (docs/numerics.md §5, §5b): dense_current's
// and current_from_sums' rounding, I = sat32(round_shift(sum, wf + x_frac - 16)), in Q16.
`default_nettype none
module el_current (
    input  wire signed [63:0] sum,     // sum_i W[j][i] x[i], exact
    input  wire signed [7:0]  shift,   // wf + x_frac - 16
    output wire signed [31:0] current
);
    wire signed [63:0] rounded;
    el_round_shift round (.x(sum), .s(shift), .y(rounded));
    el_saturate #(.WIDTH(32)) sat (.x(rounded), .y(current));
endmodule
`default_nettype wire
