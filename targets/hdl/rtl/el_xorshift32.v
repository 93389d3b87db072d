// xorshift32 (13, 17, 5), docs/numerics.md §3: the state after x. The draw is the new state,
// so a stream advances by feeding y back as the next x; a state is never 0.
`default_nettype none
module el_xorshift32 (
    input  wire [31:0] x,
    output wire [31:0] y
);
    wire [31:0] a = x ^ (x << 13);
    wire [31:0] b = a ^ (a >> 17);
    assign y = b ^ (b << 5);
endmodule
`default_nettype wire
