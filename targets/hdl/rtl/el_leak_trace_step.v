// The leak trace of one neuron in neuron_trace_step (docs/numerics.md §5):
// a~ = sat32(mul_state(a, a~) + V), with V the membrane of the step before: el_leaky_state's addend.
`default_nettype none
module el_leak_trace_step (
    input  wire signed [31:0] membrane,       // V[t-1]
    output wire signed [47:0] addend
);
    assign addend = {{16{membrane[31]}}, membrane};
endmodule
`default_nettype wire
