// The step every leaky state of the contract shares (docs/numerics.md §5): a Q16 state decays by
// the layer's leak and takes an addend, saturating:  y = sat32(mul_state(a, s) + addend), with the
// multiplier's product a s. One unit serves each kernel by its addend:
//   input_trace_step   x^ = .. + (x << (16 - x_frac))     (el_input_trace_step.v)
//   neuron_trace_step  th~ = .. - s[t-1] a,  a~ = .. + V[t-1]   (el_threshold_trace_step.v, el_leak_trace_step.v)
//   lif_step, li_step  U = .. + I    (li: V = U; lif then resets, el_lif_step.v)
//   hidden_error       d = sat32(mul_state(g, phi)), addend 0
// |mul_state| <= 2^31 and |addend| < 2^47 (an int32 lifted by 16 at most), so 49 bits hold the sum.
`default_nettype none
module el_leaky_state (
    input  wire signed [63:0] product,        // a * s[t-1] (hidden_error: g * phi)
    input  wire signed [47:0] addend,
    output wire signed [31:0] state
);
    wire signed [63:0] leaked;
    el_mul_state mul_state (.product(product), .y(leaked));
    el_saturate #(.WIDTH(32)) sat (.x(leaked + {{16{addend[47]}}, addend}), .y(state));
endmodule
`default_nettype wire
