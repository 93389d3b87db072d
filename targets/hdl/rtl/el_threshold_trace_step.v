// The threshold trace of one neuron in neuron_trace_step (docs/numerics.md §5):
// th~ = sat32(mul_state(a, th~ - ONE s)), with s the spike of the step before. The multiplier
// gives a * th~; a (th~ - ONE s) = a th~ - s (a << 16), and rounding away 16 bits commutes with
// subtracting a multiple of 2^16, so mul_state(a, th~ - ONE s) = mul_state(a, th~) - s a exactly:
// -s a is the addend of el_leaky_state.
`default_nettype none
module el_threshold_trace_step (
    input  wire signed [31:0] a,
    input  wire               spike,          // s[t-1]
    output wire signed [47:0] addend
);
    assign addend = spike ? -{{16{a[31]}}, a} : 48'sd0;
endmodule
`default_nettype wire
