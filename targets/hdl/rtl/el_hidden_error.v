// One neuron of hidden_error (docs/numerics.md §5): d = (W_up^T d_up) * phi(U - th, k) as
//     g = sat32(round_shift(back, wf_up));   d = sat32(round_shift(g * phi, 16))
// The exact sum back = sum_m W_up[m][j] d_up[m] is summed term by term before (back_sum
// elements: an exact sum, so its order does not matter). The gate g is one element (back_gate,
// stored in the error buffer), the error another: phi and g are the multiplier's operands, and
// el_leaky_state turns the product into d (mul_state, no addend).
`default_nettype none
module el_hidden_error (
    // back_gate
    input  wire signed [63:0] back,
    input  wire signed [7:0]  w_frac,          // weight_frac of the UPPER layer
    output wire signed [31:0] gate,
    // hidden_error, operand side
    input  wire signed [31:0] stored_gate,     // g, as back_gate stored it
    input  wire signed [31:0] potential,       // U
    input  wire signed [31:0] th,
    input  wire signed [7:0]  k,
    output wire signed [31:0] mul_a,           // g
    output wire signed [31:0] mul_b            // phi(U - th, k)
);
    wire signed [63:0] rounded_back;
    el_round_shift to_q16 (.x(back), .s(w_frac), .y(rounded_back));
    el_saturate #(.WIDTH(32)) sat_gate (.x(rounded_back), .y(gate));

    wire signed [31:0] phi;
    wire signed [33:0] distance = {{2{potential[31]}}, potential} - {{2{th[31]}}, th};   // U - th
    el_surrogate #(.WIDTH(34)) surrogate (.x(distance), .k(k), .phi(phi));
    assign mul_a = stored_gate;
    assign mul_b = phi;
endmodule
`default_nettype wire
