// One input of input_trace_step (docs/numerics.md §5): x^ = sat32(mul_state(a, x^) + (x << lift)),
// lift = 16 - x_frac lifts the input to Q16: the lifted input is the addend of el_leaky_state.
`default_nettype none
module el_input_trace_step (
    input  wire signed [31:0] x,
    input  wire        [4:0]  lift,           // 16 - x_frac
    output wire signed [47:0] addend
);
    assign addend = {{16{x[31]}}, x} <<< lift;
endmodule
`default_nettype wire
