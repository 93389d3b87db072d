// The datapath: one element of a kernel's loop per cycle (edgelearn/hdl/contract.py ELEMENTS),
// through one shared 32 x 32 multiplier and the op modules of the contract (docs/fpga.md).
//
//   R   the element's operands, read from the core's memories this cycle: the op modules'
//       operand sides pick the multiplier's two operands by kind, and the one other 32-bit
//       operand the kind's result side reads (its lane) is picked to be carried along
//   M   the multiplier
//   X   the op modules' result sides turn the product, the lane and the sum into the element's
//       value (the core writes it back this cycle), and the learning stream draws
// KINDS has a bit per element kind the core issues; a kind it never issues costs no logic.
//
// Elements flow in order, one per cycle or with bubbles (in_valid low). A running sum (a row of
// W x, the hidden error's back sum, the leak gradient) is a chain of elements: `in_chain` makes an
// element add onto, or consume, the value of the valid element before it, so sums need no
// read-modify-write of a buffer. The learning stream advances at X, one draw per element that
// draws, in the order the elements arrive: the contract's draw order is the core's loop order.
`include "el_contract.vh"
`default_nettype none
module el_datapath #(
    parameter [31:0] RNG_LEARN = 1,                     // the learning stream's state at power-up
    parameter [31:0] KINDS = 32'hFFFFFFFF               // the element kinds issued (bit k: kind k)
) (
    input  wire                        clk,
    // an element, the cycle its operands are read (R)
    input  wire                        in_valid,
    input  wire [`EL_ELEMENT_BITS-1:0] in_kind,
    input  wire                        in_chain,        // use the previous element's value as the sum
    input  wire signed [15:0]          in_w,            // a weight
    input  wire signed [31:0]          in_x,            // an input (a pixel, Q8, or a spike)
    input  wire signed [31:0]          in_a,            // the layer's leak, Q16
    input  wire signed [31:0]          in_v,            // the membrane V of the step before
    input  wire signed [31:0]          in_u,            // the potential U of this step (errors)
    input  wire signed [31:0]          in_th,           // the threshold
    input  wire                        in_s,            // the spike (of the step before, for the traces)
    input  wire signed [31:0]          in_trace,        // x^, th~ or a~, as the kind reads
    input  wire signed [31:0]          in_d,            // an error (hidden_error: the gate g)
    input  wire signed [63:0]          in_g,            // a sum, a gradient or (lif, li) the current, when not chained
    input  wire                        in_target,       // the neuron is the label
    // the shifts, one per op, so that a model whose layers share them gets constants (no barrel shifters)
    input  wire        [4:0]           in_lift,         // input_trace: 16 - x_frac
    input  wire signed [7:0]           in_current_shift,// lif, li, chained: wf + x_frac - 16
    input  wire signed [7:0]           in_gate_shift,   // back_gate: the upper layer's wf
    input  wire signed [8:0]           in_weight_shift, // update_weight: 32 - wf + lr_weight_shift
    input  wire signed [8:0]           in_threshold_shift,  // apply_threshold: 16 + lr_threshold_shift
    input  wire signed [8:0]           in_leak_shift,   // apply_leak: 16 + lr_leak_shift
    input  wire signed [7:0]           in_k,            // the surrogate's half-width is 2^k
    input  wire                        in_reset_shift,  // a spike subtracts th << 1
    input  wire signed [31:0]          in_floor,        // the threshold floor
    // the learning stream
    input  wire                        rng_load,        // set the state (when no element draws)
    input  wire [31:0]                 rng_value,
    output reg  [31:0]                 rng = RNG_LEARN,
    // the element's results, two cycles after R (X)
    output reg                         out_valid,
    output reg  [`EL_ELEMENT_BITS-1:0] out_kind,
    output reg  signed [63:0]          out_value,       // what the kind writes back
    output wire signed [31:0]          out_potential,   // lif: U
    output wire                        out_spike,       // lif: s (0 for every other kind)
    output wire signed [31:0]          out_current      // lif, li: I
);
    // -- R: the multiplier's operands, and the lane --------------------------------------------
    // Each operand is an AND-OR of its few sources, selected by the kind (one bit a kind).
    function [31:0] take(input selected, input [31:0] value);
        take = selected ? value : 32'd0;
    endfunction
    /* verilator lint_off UNUSEDSIGNAL */      // the kinds that read no operand have bits here too
    wire [31:0]        r_is = KINDS & (32'd1 << in_kind);
    /* verilator lint_on UNUSEDSIGNAL */
    wire signed [31:0] error_a, error_b, hidden_a, hidden_b;
    wire signed [31:0] r_w = {{16{in_w[15]}}, in_w};
    wire signed [31:0] mul_a =
        take(r_is[`EL_E_INPUT_TRACE] | r_is[`EL_E_THRESHOLD_TRACE] | r_is[`EL_E_LEAK_TRACE] | r_is[`EL_E_LIF]
             | r_is[`EL_E_LI], in_a)
        | take(r_is[`EL_E_SUM] | r_is[`EL_E_BACK_SUM], r_w)
        | take(r_is[`EL_E_UPDATE_WEIGHT] | r_is[`EL_E_THRESHOLD_GRAD] | r_is[`EL_E_LEAK_GRAD], in_d)
        | take(r_is[`EL_E_SPIKE_ERROR], error_a) | take(r_is[`EL_E_HIDDEN_ERROR], hidden_a);
    wire signed [31:0] mul_b =
        take(r_is[`EL_E_INPUT_TRACE] | r_is[`EL_E_THRESHOLD_TRACE] | r_is[`EL_E_LEAK_TRACE]
             | r_is[`EL_E_UPDATE_WEIGHT] | r_is[`EL_E_THRESHOLD_GRAD] | r_is[`EL_E_LEAK_GRAD], in_trace)
        | take(r_is[`EL_E_SUM], in_x) | take(r_is[`EL_E_LIF] | r_is[`EL_E_LI], in_v)
        | take(r_is[`EL_E_BACK_SUM], in_d) | take(r_is[`EL_E_SPIKE_ERROR], error_b)
        | take(r_is[`EL_E_HIDDEN_ERROR], hidden_b);
    wire signed [31:0] lane =                  // the operand the kind's result side reads
        take(r_is[`EL_E_INPUT_TRACE], in_x) | take(r_is[`EL_E_THRESHOLD_TRACE] | r_is[`EL_E_APPLY_LEAK], in_a)
        | take(r_is[`EL_E_LEAK_TRACE], in_v) | take(r_is[`EL_E_LIF] | r_is[`EL_E_APPLY_THRESHOLD], in_th)
        | take(r_is[`EL_E_LI_ERROR], in_u) | take(r_is[`EL_E_UPDATE_WEIGHT], r_w)
        | take(r_is[`EL_E_THRESHOLD_GRAD], in_d);

    // -- R -> M -> X: what the result sides read, carried beside the product ----------------
    reg                        m_valid = 1'b0, x_valid = 1'b0;
    reg [`EL_ELEMENT_BITS-1:0] m_kind, x_kind;
    reg                        m_chain, x_chain, m_s, x_s, m_target, x_target, m_rs, x_rs;
    reg signed [31:0]          m_lane, x_lane, m_floor, x_floor;
    reg signed [63:0]          m_g, x_g;
    reg        [4:0]           m_lift, x_lift;
    reg signed [7:0]           m_current_shift, x_current_shift, m_gate_shift, x_gate_shift;
    reg signed [8:0]           m_weight_shift, x_weight_shift, m_threshold_shift, x_threshold_shift;
    reg signed [8:0]           m_leak_shift, x_leak_shift;
    reg signed [31:0]          m_mul_a, m_mul_b;
    always @(posedge clk) begin
        m_valid <= in_valid;  m_kind <= in_kind;  m_chain <= in_chain;  m_lane <= lane;  m_floor <= in_floor;
        m_s <= in_s;  m_target <= in_target;  m_rs <= in_reset_shift;  m_g <= in_g;
        m_lift <= in_lift;  m_current_shift <= in_current_shift;  m_gate_shift <= in_gate_shift;
        m_weight_shift <= in_weight_shift;  m_threshold_shift <= in_threshold_shift;  m_leak_shift <= in_leak_shift;
        m_mul_a <= mul_a;  m_mul_b <= mul_b;
        x_valid <= m_valid;  x_kind <= m_kind;  x_chain <= m_chain;  x_lane <= m_lane;  x_floor <= m_floor;
        x_s <= m_s;  x_target <= m_target;  x_rs <= m_rs;  x_g <= m_g;
        x_lift <= m_lift;  x_current_shift <= m_current_shift;  x_gate_shift <= m_gate_shift;
        x_weight_shift <= m_weight_shift;  x_threshold_shift <= m_threshold_shift;  x_leak_shift <= m_leak_shift;
    end
    wire signed [63:0] product;
    el_mul mul (.clk(clk), .a(m_mul_a), .b(m_mul_b), .p(product));

    // -- X: the op modules' results --------------------------------------------------------
    reg  signed [63:0] last;                          // the previous valid element's value
    wire signed [63:0] sum = x_chain ? last : x_g;    // the running sum or gradient this element reads
    wire signed [31:0] summed_current, state, lif_v, spike_error, li_error, gate, th_next, a_next;
    wire signed [15:0] w_next;
    wire signed [63:0] g_next;
    wire [31:0]        draw;
    el_xorshift32 next_draw (.x(rng), .y(draw));
    // a row's current, rounded from its sum as the sum's last term leaves X (so the neuron's step
    // that reads it next starts from a register), or a current given to the element
    reg  signed [31:0] last_current;
    wire signed [31:0] current = x_chain ? last_current : x_g[31:0];

    // the leaky state step, shared by the traces, the neuron steps and the hidden error (el_leaky_state.v)
    wire signed [47:0] input_addend, threshold_addend, leak_addend;
    el_input_trace_step input_tr (.x(x_lane), .lift(x_lift), .addend(input_addend));
    el_threshold_trace_step threshold_tr (.a(x_lane), .spike(x_s), .addend(threshold_addend));
    el_leak_trace_step leak_tr (.membrane(x_lane), .addend(leak_addend));
    reg signed [47:0] addend;
    always @(*)
        case (x_kind)
            `EL_E_INPUT_TRACE:     addend = input_addend;
            `EL_E_THRESHOLD_TRACE: addend = threshold_addend;
            `EL_E_LEAK_TRACE:      addend = leak_addend;
            `EL_E_LIF, `EL_E_LI:   addend = {{16{current[31]}}, current};
            default:               addend = 48'sd0;
        endcase
    el_leaky_state leaky (.product(product), .addend(addend), .state(state));
    wire lif_spike;
    el_lif_step lif (.potential(state), .th(x_lane), .reset_shift(x_rs), .spike(lif_spike), .membrane(lif_v));
    assign out_spike = x_kind == `EL_E_LIF && lif_spike;
    assign out_potential = state;

    el_spiking_output_error spiking_err (.spike(in_s), .potential(in_u), .th(in_th), .target(in_target), .k(in_k),
                                         .mul_a(error_a), .mul_b(error_b), .product(product), .error(spike_error));
    el_li_output_error li_err (.potential(x_lane), .target(x_target), .error(li_error));
    el_hidden_error hidden (.back(sum), .w_frac(x_gate_shift), .gate(gate),
                            .stored_gate(in_d), .potential(in_u), .th(in_th), .k(in_k),
                            .mul_a(hidden_a), .mul_b(hidden_b));
    // threshold_grads' sum; leak_grad's is the same without the - (d << 16) term, so it runs here with d = 0
    el_threshold_grad gradient (.g(sum), .product(product), .d(x_kind == `EL_E_THRESHOLD_GRAD ? x_lane : 32'sd0),
                                .g_next(g_next));

    // the one stochastic rounding unit of the three updates: lowered = x - SR(p, shift), one draw
    wire               weight = x_kind == `EL_E_UPDATE_WEIGHT;
    wire signed [8:0]  update_shift = weight ? x_weight_shift
                                    : (x_kind == `EL_E_APPLY_THRESHOLD) ? x_threshold_shift : x_leak_shift;
    wire signed [63:0] step;
    wire               sr_draws, leak_draws;
    el_stochastic_shift sr (.p(weight ? product : sum), .s(update_shift), .u(draw), .y(step), .draws(sr_draws));
    wire signed [63:0] lowered = {{32{x_lane[31]}}, x_lane} - step;
    el_update_weight weight_update (.lowered(lowered), .w_next(w_next));
    el_apply_threshold threshold (.lowered(lowered), .floor(x_floor), .th_next(th_next));
    el_apply_leak leak (.a(x_lane), .g(sum), .lowered(lowered), .a_next(a_next), .draws(leak_draws));

    // the value: a sum's 64 bits, or 32 bits of a result, sign-extended (a product is 0 for the kinds
    // that take none, so sum + product is also sum_store's value)
    /* verilator lint_off UNUSEDSIGNAL */       // zero has a bit here too
    wire [31:0] x_is = KINDS & (32'd1 << x_kind);
    /* verilator lint_on UNUSEDSIGNAL */
    wire        gradient_kind = x_is[`EL_E_THRESHOLD_GRAD] | x_is[`EL_E_LEAK_GRAD];
    wire        wide = x_is[`EL_E_SUM] | x_is[`EL_E_BACK_SUM] | x_is[`EL_E_SUM_STORE] | gradient_kind;
    wire [63:0] wide_value = gradient_kind ? g_next : sum + product;
    el_current to_current (.sum(wide_value), .shift(x_current_shift), .current(summed_current));
    wire [31:0] low =
        take(wide, wide_value[31:0])
        | take(x_is[`EL_E_INPUT_TRACE] | x_is[`EL_E_THRESHOLD_TRACE] | x_is[`EL_E_LEAK_TRACE] | x_is[`EL_E_LI]
               | x_is[`EL_E_HIDDEN_ERROR], state)
        | take(x_is[`EL_E_LIF], lif_v) | take(x_is[`EL_E_SPIKE_ERROR], spike_error)
        | take(x_is[`EL_E_LI_ERROR], li_error) | take(x_is[`EL_E_BACK_GATE], gate)
        | take(x_is[`EL_E_UPDATE_WEIGHT], {{16{w_next[15]}}, w_next})
        | take(x_is[`EL_E_APPLY_THRESHOLD], th_next) | take(x_is[`EL_E_APPLY_LEAK], a_next);
    wire        draws = (x_is[`EL_E_UPDATE_WEIGHT] | x_is[`EL_E_APPLY_THRESHOLD] | (x_is[`EL_E_APPLY_LEAK] & leak_draws))
                        & sr_draws;
    always @(*) begin
        out_value = {wide ? wide_value[63:32] : {32{low[31]}}, low};
        out_valid = x_valid;
        out_kind = x_kind;
    end
    assign out_current = current;

    always @(posedge clk) begin
        if (x_valid) begin
            last <= out_value;
            last_current <= summed_current;
        end
        if (rng_load)
            rng <= rng_value;
        else if (x_valid && draws)
            rng <= draw;
    end
endmodule
`default_nettype wire
