// mul_state (docs/numerics.md §3) from the multiplier's product: round_shift(a b, 16) for a Q16
// factor in [0, ONE] (a leak, or the surrogate phi) times a 32-bit value, so |a b| <= 2^47 (§8):
// the rounding runs on the product's low 49 bits, and the result fits 33.
`default_nettype none
module el_mul_state (
    /* verilator lint_off UNUSEDSIGNAL */     // bits 63..49 are copies of bit 48 (the bound above)
    input  wire signed [63:0] product,
    /* verilator lint_on UNUSEDSIGNAL */
    output wire signed [63:0] y
);
    wire signed [48:0] low = product[48:0];
    wire signed [48:0] rounded = (low + 49'sd32768) >>> 16;
    assign y = {{15{rounded[48]}}, rounded};
endmodule
`default_nettype wire
