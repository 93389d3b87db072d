// Drives the datapath (targets/hdl/rtl/el_datapath.v) one cycle per line of stdin, as the core
// does: the line's element enters at R; the line printed for the cycle shows what is at X then
// (the element three lines up) and the learning stream's state. edgelearn/hdl/sim.py writes the
// lines from the contract's kernel loops (tests/test_hdl_kernels.py) and reads the results.
// A line, hex, two's complement, in this order:
//   valid kind chain w x a v u th s trace d g target lift current_shift gate_shift weight_shift
//   threshold_shift leak_shift k reset_shift floor rng_load rng_value
// Printed per cycle: out_valid value potential spike current rng
`include "el_contract.vh"
`default_nettype none
module el_datapath_tb;
    reg clk = 1'b0;
    reg                        valid, chain, s, target, reset_shift, rng_load;
    reg [`EL_ELEMENT_BITS-1:0] kind;
    reg [15:0]                 w;
    reg [31:0]                 x, a, v, u, th, trace, d, floor, rng_value;
    reg [63:0]                 g;
    reg [4:0]                  lift;
    reg [7:0]                  current_shift, gate_shift, k;
    reg [8:0]                  weight_shift, threshold_shift, leak_shift;
    wire                        out_valid, out_spike;
    wire [`EL_ELEMENT_BITS-1:0] out_kind;
    wire signed [63:0]          out_value;
    wire signed [31:0]          out_potential, out_current;
    wire [31:0]                 rng;
    el_datapath dut (
        .clk(clk), .in_valid(valid), .in_kind(kind), .in_chain(chain), .in_w(w), .in_x(x), .in_a(a), .in_v(v),
        .in_u(u), .in_th(th), .in_s(s), .in_trace(trace), .in_d(d), .in_g(g), .in_target(target), .in_lift(lift),
        .in_current_shift(current_shift), .in_gate_shift(gate_shift), .in_weight_shift(weight_shift),
        .in_threshold_shift(threshold_shift), .in_leak_shift(leak_shift),
        .in_k(k), .in_reset_shift(reset_shift), .in_floor(floor), .rng_load(rng_load), .rng_value(rng_value),
        .rng(rng), .out_valid(out_valid), .out_kind(out_kind), .out_value(out_value), .out_potential(out_potential),
        .out_spike(out_spike), .out_current(out_current));
    integer fd, got;
    initial begin
        fd = $fopen("/dev/stdin", "r");
        got = $fscanf(fd, "%h %h %h %h %h %h %h %h %h %h %h %h %h %h %h %h %h %h %h %h %h %h %h %h %h\n", valid, kind, chain, w, x,
                      a, v, u, th, s, trace, d, g, target, lift, current_shift, gate_shift, weight_shift,
                      threshold_shift, leak_shift, k, reset_shift, floor, rng_load, rng_value);
        while (got == 25) begin
            #1 clk = 1'b1;
            #1 clk = 1'b0;
            $display("%h %h %h %h %h %h", out_valid, out_value, out_potential, out_spike, out_current, rng);
            got = $fscanf(fd, "%h %h %h %h %h %h %h %h %h %h %h %h %h %h %h %h %h %h %h %h %h %h %h %h %h\n", valid, kind, chain, w,
                          x, a, v, u, th, s, trace, d, g, target, lift, current_shift, gate_shift, weight_shift,
                          threshold_shift, leak_shift, k, reset_shift, floor, rng_load, rng_value);
        end
        $finish;
    end
endmodule
`default_nettype wire
