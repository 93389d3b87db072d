// One neuron of spiking_output_error (docs/numerics.md §5), E = 1/2 |s - y|^2:
//     d = sat32((s - y) * phi(U - th, k))
// In two halves a pipeline apart. Operand side (the cycle the neuron's state is read): the
// multiplier's operands, e = s - y in {-1, 0, 1} and the surrogate phi. Result side: d, the
// product, which sat32 leaves as it is (|e phi| <= ONE).
`default_nettype none
module el_spiking_output_error (
    // operand side
    input  wire               spike,
    input  wire signed [31:0] potential,      // U
    input  wire signed [31:0] th,
    input  wire               target,         // j == label
    input  wire signed [7:0]  k,              // the surrogate's half-width is 2^k
    output wire signed [31:0] mul_a,          // s - y
    output wire signed [31:0] mul_b,          // phi(U - th, k)
    // result side
    /* verilator lint_off UNUSEDSIGNAL */     // bits 63..32 are copies of bit 31 (|e phi| <= ONE)
    input  wire signed [63:0] product,
    /* verilator lint_on UNUSEDSIGNAL */
    output wire signed [31:0] error
);
    wire signed [31:0] phi;
    wire signed [33:0] distance = {{2{potential[31]}}, potential} - {{2{th[31]}}, th};   // U - th
    el_surrogate #(.WIDTH(34)) surrogate (.x(distance), .k(k), .phi(phi));
    assign mul_a = $signed({31'd0, spike}) - $signed({31'd0, target});
    assign mul_b = phi;
    assign error = product[31:0];
endmodule
`default_nettype wire
