// One synapse of update_weights (docs/numerics.md §5): W = sat16(W - SR(d x^, shift)), one draw of
// the learning stream (every shift the runtime uses is >= 17, so every update draws). The
// datapath's one stochastic rounding unit gives lowered = W - SR(d x^, shift).
`default_nettype none
module el_update_weight (
    input  wire signed [63:0] lowered,
    output wire signed [15:0] w_next
);
    el_saturate #(.WIDTH(16)) sat (.x(lowered), .y(w_next));
endmodule
`default_nettype wire
