// One neuron of li_output_error (docs/numerics.md §5), E = 1/2 |U - y|^2: d = sat32(U - y ONE).
`include "el_contract.vh"
`default_nettype none
module el_li_output_error (
    input  wire signed [31:0] potential,
    input  wire               target,          // j == label
    output wire signed [31:0] error
);
    wire signed [63:0] y = target ? `EL_ONE : 64'sd0;
    el_saturate #(.WIDTH(32)) sat (.x({{32{potential[31]}}, potential} - y), .y(error));
endmodule
`default_nettype wire
