// sat32 / sat16 (docs/numerics.md §1): clamp a 64-bit value into a signed WIDTH-bit one; every
// store into a narrower buffer saturates, never wraps. x fits iff its bits from WIDTH-1 up are
// all equal (a test of the top bits, not a 64-bit comparison).
`default_nettype none
module el_saturate #(
    parameter WIDTH = 32
) (
    input  wire signed [63:0]      x,
    output wire signed [WIDTH-1:0] y
);
    wire fits = (&x[63:WIDTH-1]) || !(|x[63:WIDTH-1]);
    wire [WIDTH-1:0] hi = {1'b0, {(WIDTH - 1){1'b1}}};
    assign y = fits ? x[WIDTH-1:0] : x[63] ? ~hi : hi;
endmodule
`default_nettype wire
