// The datapath's one multiplier: a signed 32 x 32 -> 64 product of registered operands, registered.
// Every product of the contract fits it (weights x inputs, leaks x states, errors x traces, errors
// x the surrogate), so one multiplier serves every op. Synthesis splits it over DSP tiles (the
// iCE40's multiply 16 x 16) and sums the partial products in the same cycle.
`default_nettype none
module el_mul (
    input  wire               clk,
    input  wire signed [31:0] a,
    input  wire signed [31:0] b,
    output reg  signed [63:0] p
);
    always @(posedge clk)
        p <= a * b;
endmodule
`default_nettype wire
