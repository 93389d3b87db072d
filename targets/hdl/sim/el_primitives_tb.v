// Replays the contract's primitives (docs/numerics.md §3, §5): one call per line of stdin, its
// results on stdout (edgelearn/hdl/sim.py writes and reads both; tests/test_hdl_kernels.py
// compares them with the golden vectors). A line: `op a b c`, hex, two's complement.
//   op 0 round_shift(x = a, s = b)              -> y
//   op 1 stochastic_shift(p = a, s = b, st = c) -> y, the state after (one draw when s > 0)
//   op 2 rng_next(st = a)                       -> the draw (= the state after)
//   op 3 sat_sum(acc = a, p = b)                -> y
//   op 4 surrogate(x = a, k = b)                -> phi
`default_nettype none
module el_primitives_tb;
    reg  [3:0]  op;
    reg  [63:0] a, b, c;
    wire signed [63:0] rounded, shifted, summed;
    wire signed [31:0] phi;
    wire [31:0] draw_sr, draw;
    wire        draws;
    el_round_shift round (.x(a), .s(b[7:0]), .y(rounded));
    el_xorshift32 sr_draw (.x(c[31:0]), .y(draw_sr));
    el_stochastic_shift sr (.p(a), .s(b[8:0]), .u(draw_sr), .y(shifted), .draws(draws));
    el_xorshift32 next (.x(a[31:0]), .y(draw));
    el_sat_sum sat (.acc(a), .p(b), .y(summed));
    el_surrogate surrogate (.x(a), .k(b[7:0]), .phi(phi));
    integer fd, got;
    initial begin
        fd = $fopen("/dev/stdin", "r");
        got = $fscanf(fd, "%h %h %h %h\n", op, a, b, c);
        while (got == 4) begin
            #1;
            case (op)
                4'd0: $display("%h", rounded);
                4'd1: $display("%h %h", shifted, draws ? draw_sr : c[31:0]);
                4'd2: $display("%h", draw);
                4'd3: $display("%h", summed);
                default: $display("%h", {{32{phi[31]}}, phi});
            endcase
            got = $fscanf(fd, "%h %h %h %h\n", op, a, b, c);
        end
        $finish;
    end
endmodule
`default_nettype wire
