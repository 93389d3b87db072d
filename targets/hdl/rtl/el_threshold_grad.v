// One neuron of threshold_grads (docs/numerics.md §5): g = sat_sum(g, d (th~ - ONE)). The
// multiplier gives d th~, and d (th~ - ONE) = d th~ - (d << 16) exactly in int64.
`include "el_contract.vh"
`default_nettype none
module el_threshold_grad (
    input  wire signed [63:0] g,
    input  wire signed [63:0] product,        // d * th~
    input  wire signed [31:0] d,
    output wire signed [63:0] g_next
);
    wire signed [63:0] term = product - ({{32{d[31]}}, d} <<< `EL_STATE_FRAC);
    el_sat_sum accumulate (.acc(g), .p(term), .y(g_next));
endmodule
`default_nettype wire
