// One neuron of apply_threshold_grads (docs/numerics.md §5): th = max(floor, sat32(th - SR(g, shift))),
// one draw; the caller visits only the neurons whose g is not 0. The datapath's stochastic rounding
// unit gives lowered = th - SR(g, shift).
`default_nettype none
module el_apply_threshold (
    input  wire signed [63:0] lowered,
    input  wire signed [31:0] floor,          // ONE / 16 (EL_THRESHOLD_FLOOR)
    output wire signed [31:0] th_next
);
    wire signed [31:0] saturated;
    el_saturate #(.WIDTH(32)) sat (.x(lowered), .y(saturated));
    assign th_next = (saturated < floor) ? floor : saturated;
endmodule
`default_nettype wire
