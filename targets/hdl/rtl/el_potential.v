// The potential U of a neuron's last step, rebuilt from what the core stores: U = V + s (th << rs).
// A spike means U >= th > 0 (thresholds are > 0 in a model and >= ONE/16 after an update), so the
// reset V = U - (th << rs) did not saturate and adding it back gives U exactly: the core keeps no
// potential buffer (docs/fpga.md). An li neuron never spikes, and its U is V.
`default_nettype none
module el_potential (
    input  wire signed [31:0] membrane,
    input  wire               spike,
    input  wire signed [31:0] th,
    input  wire               reset_shift,
    output wire signed [31:0] potential
);
    wire signed [31:0] reset = reset_shift ? (th <<< 1) : th;
    assign potential = spike ? membrane + reset : membrane;
endmodule
`default_nettype wire
