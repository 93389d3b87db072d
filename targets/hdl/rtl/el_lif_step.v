// One neuron of lif_step (docs/numerics.md §5; edgelearn/ops/neurons/lif.py): leak after the
// reset, reset by subtraction. el_leaky_state gives the potential u = sat32(mul_state(a, V) + I);
// then  s = u >= th;  V = s ? sat32(u - (th << reset_shift)) : u.
`default_nettype none
module el_lif_step (
    input  wire signed [31:0] potential,      // U, before the reset
    input  wire signed [31:0] th,
    input  wire               reset_shift,    // 1: a spike subtracts 2 th (SPIDE's modified reset)
    output wire               spike,
    output wire signed [31:0] membrane        // V, after the reset
);
    // one subtraction gives both the spike (its sign) and, for reset_shift 0, the reset membrane
    wire signed [33:0] above = {{2{potential[31]}}, potential} - {{2{th[31]}}, th};       // u - th
    wire signed [33:0] reset = reset_shift ? above - {{2{th[31]}}, th} : above;           // u - (th << rs)
    assign spike = !above[33];
    wire signed [31:0] after_reset;
    el_saturate #(.WIDTH(32)) sat (.x({{30{reset[33]}}, reset}), .y(after_reset));
    assign membrane = spike ? after_reset : potential;
endmodule
`default_nettype wire
