// sat_sum (docs/numerics.md §3): acc + p clamped to +-2^61, so that one more int64 product
// (|p| <= 2^62 + 2^47) never overflows the sum. The sum is inside iff its top three bits are
// equal (-2^61 .. 2^61 - 1) or it is 2^61 itself.
`include "el_contract.vh"
`default_nettype none
module el_sat_sum (
    input  wire signed [63:0] acc,
    input  wire signed [63:0] p,
    output wire signed [63:0] y
);
    localparam signed [63:0] LIMIT = `EL_SUM_LIMIT;
    wire signed [63:0] sum = acc + p;
    wire in_range = sum[63:61] == 3'b000 || sum[63:61] == 3'b111 || sum == LIMIT;
    assign y = in_range ? sum : sum[63] ? -LIMIT : LIMIT;
endmodule
`default_nettype wire
