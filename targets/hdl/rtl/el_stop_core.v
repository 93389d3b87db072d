// STOP learning on chip (docs/numerics.md §6, docs/fpga.md): the per-sample loop of
// edgelearn/rules/stop/fixed.py, time-multiplexed over one datapath (el_datapath.v). A model's
// generated top level (edgelearn.hdl.generate) sets the parameters from its layer table.
//
// Pipeline, one element a cycle:
//   G  the sequencer: phase by phase, the contract's loops; it emits one element (or waits)
//   A  indices from the non-zero lists resolved, buffer addresses computed, reads issued
//   R  buffers read: the datapath's operand side          } el_datapath.v
//   M  the multiplier                                     }
//   X  results written back, non-zero entries listed     }
// A phase's elements never read what another element of the same phase writes (each writes
// its own neuron, input or synapse; sums run in the datapath's chain), so elements stream
// without stalls; the pipeline drains between phases. A single-port buffer (SPRAM) is read
// by no element while another writes it: G waits a cycle instead.
//
// Lists of non-zero entries (the contract's event-driven loops), one memory in four regions:
// the sample's non-zero pixels, each layer's spikes of this step, each trainable layer's
// non-zero input traces and non-zero errors; each written as X finds them, in ascending order.
`include "el_contract.vh"
`default_nettype none
module el_stop_core #(
    parameter LAYERS = 2,
    parameter INPUTS = 64,              // layer 0's fan-in: pixels per sample
    parameter CLASSES = 10,
    parameter STEPS = 8,                // T
    parameter NEURONS = 266,
    parameter TRACES = 320,             // inputs of the trainable layers (the input traces)
    parameter LEARN_NEURONS = 266,      // neurons of the trainable layers (th~, a~, errors)
    parameter WEIGHTS = 18944,
    parameter FIRST_SIZE = 256,         // layer 0's neurons: its exact sums of a direct input
    parameter SUM_BITS = 32,            // bits of those sums
    parameter INDEX_BITS = 9,           // an input's or a neuron's index inside its layer
    parameter LOWEST = 0,               // the lowest trainable layer; LAYERS: none learns
    parameter READOUT_LI = 0,           // the readout is li (scores are summed potentials)
    parameter SCORE_BITS = 4,
    // the layer table (edgelearn.plan.tables), 32 bits a field, layer 0 in the low bits
    parameter [32*LAYERS-1:0] N_IN = 0,
    parameter [32*LAYERS-1:0] N_OUT = 0,
    parameter [32*LAYERS-1:0] W_AT = 0,
    parameter [32*LAYERS-1:0] N_OFF = 0,
    parameter [32*LAYERS-1:0] LEARN_OFF = 0,
    parameter [32*LAYERS-1:0] IN_OFF = 0,
    parameter [32*LAYERS-1:0] WEIGHT_FRAC = 0,
    parameter [32*LAYERS-1:0] FLAGS = 0,        // EL_TRAINABLE 4, EL_LEARN_LEAK 2, EL_LEARN_THRESHOLD 1
    parameter [32*LAYERS-1:0] RESET_SHIFT = 0,
    parameter [32*LAYERS-1:0] LEAKS = 0,        // Q16, the initial leaks
    parameter SURROGATE_K = 1,
    parameter [8:0] LR_WEIGHT = 6,
    parameter [8:0] LR_THRESHOLD = 8,
    parameter [8:0] LR_LEAK = 12,
    // the learning-rate schedule (docs/numerics.md §6c): decay = min(learned / EVERY, SCHEDULE_STEPS)
    parameter SCHEDULE = 0,
    parameter [31:0] SCHEDULE_EVERY = 1,
    parameter SCHEDULE_STEPS = 1,
    parameter [31:0] LEARNED = 0,               // the count so far, its decay and the remainder
    parameter [31:0] DECAY = 0,
    parameter [31:0] SINCE = 0,
    parameter [31:0] RNG_LEARN = 1,
    parameter WEIGHTS_SINGLE_PORT = 0,
    parameter THRESHOLDS_SINGLE_PORT = 0,
    parameter WEIGHTS_INIT = "",
    parameter THRESHOLDS_INIT = "",
    parameter LABEL_BITS = (CLASSES > 1) ? $clog2(CLASSES) : 1,
    parameter CFG_BITS = $clog2(WEIGHTS + NEURONS + LAYERS + 4)
) (
    input  wire                  clk,
    input  wire                  rst,            // back to idle (parameters and PRNG states are kept)
    // samples: INPUTS beats, one pixel (Q8) each, in input order; learn and label with the first
    input  wire                  in_valid,
    output wire                  in_ready,
    input  wire [7:0]            in_pixel,
    input  wire                  in_learn,
    input  wire [LABEL_BITS-1:0] in_label,
    // results: CLASSES beats per sample, class 0 first, out_last with the last
    output wire                  out_valid,
    input  wire                  out_ready,
    output wire [SCORE_BITS-1:0] out_score,
    output wire                  out_last,
    // the parameter port, served between samples: weights, thresholds, leaks, PRNG states, schedule
    input  wire                  cfg_valid,
    output wire                  cfg_ready,
    input  wire                  cfg_write,
    input  wire [CFG_BITS-1:0]   cfg_addr,
    input  wire [31:0]           cfg_wdata,
    output reg                   cfg_rvalid,
    output reg  [31:0]           cfg_rdata
);
    function integer bits(input integer depth);      // address bits of a buffer
        bits = (depth > 1) ? $clog2(depth) : 1;
    endfunction
    localparam R = LAYERS - 1;
    localparam LB = bits(LAYERS + 1);
    localparam LIST_SIZE = INPUTS + NEURONS + TRACES + LEARN_NEURONS;
    // an index, a count or a list address: every one fits, and it is wider than a list entry or a label
    localparam CB = (bits(LIST_SIZE + 1) > INDEX_BITS && bits(LIST_SIZE + 1) > LABEL_BITS) ? bits(LIST_SIZE + 1)
                    : ((INDEX_BITS > LABEL_BITS) ? INDEX_BITS : LABEL_BITS) + 1;
    localparam LIST_S = INPUTS, LIST_T = INPUTS + NEURONS, LIST_D = INPUTS + NEURONS + TRACES;
    localparam BYTES = INPUTS + NEURONS;              // the pixels, then every neuron's spike
    localparam [CB-1:0] ZERO_COUNT = (NEURONS > TRACES) ? NEURONS : TRACES, FIRST_ROWS = FIRST_SIZE;
    localparam TRACE_DEPTH = (TRACES > 0) ? TRACES : 1, LEARN_DEPTH = (LEARN_NEURONS > 0) ? LEARN_NEURONS : 1;
    localparam WA = bits(WEIGHTS), NA = bits(NEURONS), BA = bits(BYTES), TA = bits(TRACE_DEPTH);
    localparam LA = bits(LEARN_DEPTH), SA = bits(FIRST_SIZE), QA = bits(LIST_SIZE);
    localparam TH_BASE = WEIGHTS, LEAK_BASE = WEIGHTS + NEURONS, REG_BASE = WEIGHTS + NEURONS + LAYERS;
    localparam LI = bits(LAYERS), SI = bits(CLASSES);   // a layer's, a class's index into registers

    // values[l] (the last layer's beyond): a chain of selections of constants, so that a field whose
    // layers agree folds into one constant in synthesis, and the op that reads it needs no shifter
    function [31:0] field(input [32*LAYERS-1:0] values, input [LB-1:0] l);
        integer i;
        begin
            field = values[31:0];
            for (i = 1; i < LAYERS; i = i + 1)
                if ({{(32 - LB){1'b0}}, l} >= i) field = values[32 * i +: 32];
        end
    endfunction
    // base + values[l]: a selection of constants too, with the addition made in every branch
    function [31:0] based(input [32*LAYERS-1:0] values, input [LB-1:0] l, input integer base);
        integer i;
        begin
            based = values[31:0] + base;
            for (i = 1; i < LAYERS; i = i + 1)
                if ({{(32 - LB){1'b0}}, l} >= i) based = values[32 * i +: 32] + base;
        end
    endfunction
    function [CB-1:0] list_at(input [32*LAYERS-1:0] values, input [LB-1:0] l, input integer base);
        reg [31:0] value;
        begin
            value = based(values, l, base);
            list_at = value[CB-1:0];
        end
    endfunction
    function [CB-1:0] field16(input [32*LAYERS-1:0] values, input [LB-1:0] l);   // a size or an offset
        reg [31:0] value;
        begin
            value = field(values, l);
            field16 = value[CB-1:0];
        end
    endfunction
    function [LI-1:0] at(input [LB-1:0] l);        // the per-layer registers' index of layer l
        at = l[LI-1:0];
    endfunction
    function [31:0] wide(input [CB-1:0] x);
        wide = {{(32 - CB){1'b0}}, x};
    endfunction
    function [4:0] x_frac(input [LB-1:0] l);         // a direct input (layer 0) is Q8, spikes Q0
        x_frac = (l == 0) ? `EL_INPUT_FRAC : 5'd0;
    endfunction
    function [8:0] lr(input [8:0] base, input [5:0] decay);    // the effective shift, §6c
        reg [8:0] shift;
        begin
            shift = base + {3'd0, decay};
            lr = (shift > `EL_MAX_LR_SHIFT) ? `EL_MAX_LR_SHIFT : shift;
        end
    endfunction

    // the element kinds this model's loops issue: the datapath drops the logic of the others
    function [31:0] issued_kinds(input integer layers);
        integer i;
        reg     thresholds, leaks;
        begin
            thresholds = 0; leaks = 0;
            for (i = 0; i < layers; i = i + 1) begin
                if ((FLAGS[32 * i +: 32] & (`EL_TRAINABLE | `EL_LEARN_THRESHOLD)) == (`EL_TRAINABLE | `EL_LEARN_THRESHOLD))
                    thresholds = 1;
                if ((FLAGS[32 * i +: 32] & (`EL_TRAINABLE | `EL_LEARN_LEAK)) == (`EL_TRAINABLE | `EL_LEARN_LEAK))
                    leaks = 1;
            end
            issued_kinds = (32'd1 << `EL_E_ZERO) | (32'd1 << `EL_E_SUM) | (32'd1 << `EL_E_SUM_STORE);
            if (READOUT_LI) issued_kinds = issued_kinds | (32'd1 << `EL_E_LI);
            if (!READOUT_LI || layers > 1) issued_kinds = issued_kinds | (32'd1 << `EL_E_LIF);
            if (LOWEST < layers) begin
                issued_kinds = issued_kinds | (32'd1 << `EL_E_INPUT_TRACE) | (32'd1 << `EL_E_THRESHOLD_TRACE)
                               | (32'd1 << `EL_E_LEAK_TRACE) | (32'd1 << `EL_E_UPDATE_WEIGHT)
                               | (32'd1 << (READOUT_LI ? `EL_E_LI_ERROR : `EL_E_SPIKE_ERROR));
                if (LOWEST < layers - 1)
                    issued_kinds = issued_kinds | (32'd1 << `EL_E_BACK_SUM) | (32'd1 << `EL_E_BACK_GATE)
                                   | (32'd1 << `EL_E_HIDDEN_ERROR);
                if (thresholds)
                    issued_kinds = issued_kinds | (32'd1 << `EL_E_THRESHOLD_GRAD) | (32'd1 << `EL_E_APPLY_THRESHOLD);
                if (leaks)
                    issued_kinds = issued_kinds | (32'd1 << `EL_E_LEAK_GRAD) | (32'd1 << `EL_E_APPLY_LEAK);
            end
        end
    endfunction
    localparam [31:0] KINDS = issued_kinds(LAYERS);

    // -- the phases of the per-sample loop -------------------------------------------------------
    localparam [4:0] IDLE = 0, RECEIVE = 1, ZERO = 2, SUMS = 3, LAYER = 4, TRACE_IN = 5, TRACE_N = 6,
                     FORWARD = 7, ERROR_OUT = 8, HIDDEN = 9, BACK = 10, ERROR_HID = 11, UPDATE = 12,
                     UPDATE_W = 13, UPDATE_TH = 14, UPDATE_LEAK = 15, REFRESH = 16, STEP_END = 17,
                     RESULT = 18;
    localparam [1:0] LISTED_NONE = 0, LISTED_I = 1, LISTED_J = 2, LISTED_M = 3;   // what a list read gives

    reg [4:0]            phase = IDLE;
    reg [LB-1:0]         l = 0;
    reg [bits(STEPS + 1)-1:0] t = 0;
    reg [CB-1:0]         row = 0, col = 0, row_j = 0, received = 0, result = 0;
    reg                  sub = 0;
    reg [1:0]            fetch = 0;               // a listed row's neuron: 0 to read, 1 reading, 2 read
    reg                  learn = 0;
    reg [LABEL_BITS-1:0] label = 0;
    reg [CB-1:0]         nzs_count [0:LAYERS-1];  // per layer: this step's spikes,
    reg [CB-1:0]         nzt_count [0:LAYERS-1];  // non-zero input traces,
    reg [CB-1:0]         nzd_count [0:LAYERS-1];  // non-zero errors
    reg [CB-1:0]         nzx_count = 0;           // the sample's non-zero pixels
    reg [16:0]           leaks [0:LAYERS-1];      // Q16 in [0, ONE]
    reg [SCORE_BITS-1:0] scores [0:CLASSES-1];
    reg [31:0]           learned = LEARNED, since = SINCE;
    reg [5:0]            decay_count = DECAY[5:0];
    wire [5:0]           decay = SCHEDULE ? decay_count : 6'd0;
    integer              n;
    initial for (n = 0; n < LAYERS; n = n + 1) leaks[n] = LEAKS[32 * n +: 17];

    // -- G: the loop of the phase ------------------------------------------------------------------
    // rows (each a neuron or an input; `fetched`: a neuron read from a list of non-zero errors first,
    // `listed`: each element reads it from that list), columns (a list: non-zero pixels, spikes,
    // errors or traces), and a row's element after its columns; or two elements per row, or a tail
    reg [CB-1:0]               rows, cols, row_list, col_list;
    reg                        rows_fetched, rows_listed, row_element, two_per_row, tail;
    reg [`EL_ELEMENT_BITS-1:0] col_kind, row_kind, second_kind;
    reg [1:0]                  col_listed;
    wire [CB-1:0]              list_q;
    wire [LB-1:0]              up = l + 1'b1;
    always @(*) begin
        rows = 0; cols = 0; row_list = 0; col_list = 0; rows_fetched = 0; rows_listed = 0; row_element = 1;
        two_per_row = 0; tail = 0; col_kind = `EL_E_SUM; row_kind = `EL_E_ZERO; second_kind = `EL_E_ZERO;
        col_listed = LISTED_I;
        case (phase)
            ZERO:      rows = ZERO_COUNT;
            SUMS:      begin rows = FIRST_ROWS; cols = nzx_count; row_kind = `EL_E_SUM_STORE; end
            REFRESH:   begin rows = nzd_count[0]; rows_fetched = 1; row_list = list_at(LEARN_OFF, 0, LIST_D);
                             cols = nzx_count; row_kind = `EL_E_SUM_STORE; end
            TRACE_IN:  begin rows = field16(N_IN, l); row_kind = `EL_E_INPUT_TRACE; end
            TRACE_N:   begin rows = field16(N_OUT, l); two_per_row = 1; row_kind = `EL_E_THRESHOLD_TRACE;
                             second_kind = `EL_E_LEAK_TRACE; end
            FORWARD:   begin rows = field16(N_OUT, l); row_kind = (READOUT_LI && l == R) ? `EL_E_LI : `EL_E_LIF;
                             if (l != 0) begin cols = nzs_count[at(l - 1'b1)]; col_list = list_at(N_OFF, l - 1'b1, LIST_S); end
                       end
            ERROR_OUT: begin rows = field16(N_OUT, l); row_kind = READOUT_LI ? `EL_E_LI_ERROR : `EL_E_SPIKE_ERROR; end
            BACK:      begin rows = field16(N_OUT, l); cols = nzd_count[at(up)]; col_list = list_at(LEARN_OFF, up, LIST_D);
                             col_kind = `EL_E_BACK_SUM; col_listed = LISTED_M; row_kind = `EL_E_BACK_GATE; end
            ERROR_HID: begin rows = field16(N_OUT, l); row_kind = `EL_E_HIDDEN_ERROR; end
            UPDATE_W:  begin rows = nzd_count[at(l)]; rows_fetched = 1; row_list = list_at(LEARN_OFF, l, LIST_D);
                             cols = nzt_count[at(l)]; col_list = list_at(IN_OFF, l, LIST_T); col_kind = `EL_E_UPDATE_WEIGHT;
                             row_element = 0; end
            UPDATE_TH: begin rows = nzd_count[at(l)]; rows_listed = 1; row_list = list_at(LEARN_OFF, l, LIST_D);
                             two_per_row = 1; row_kind = `EL_E_THRESHOLD_GRAD; second_kind = `EL_E_APPLY_THRESHOLD; end
            UPDATE_LEAK: begin rows = nzd_count[at(l)]; rows_listed = 1; row_list = list_at(LEARN_OFF, l, LIST_D);
                             row_kind = `EL_E_LEAK_GRAD; tail = 1; end
            default: ;
        endcase
    end

    // G: this cycle's element, and the loop's next position
    reg                        e_valid, e_chain, done;
    reg [`EL_ELEMENT_BITS-1:0] e_kind;
    reg [CB-1:0]               e_j, e_i, list_raddr, n_row, n_col, n_row_j;
    reg [1:0]                  e_listed, n_fetch;
    reg                        n_sub;
    always @(*) begin
        e_valid = 0; e_chain = 0; e_kind = row_kind; e_j = row; e_i = row; e_listed = LISTED_NONE; done = 0;
        list_raddr = 0; n_row = row; n_col = col; n_row_j = row_j; n_sub = sub; n_fetch = fetch;
        if (row == rows) begin
            if (tail && !sub) begin               // the leak's update, after its gradient's sum
                e_valid = 1; e_kind = `EL_E_APPLY_LEAK; e_chain = 1; n_sub = 1;
            end else
                done = 1;
        end else if (rows_fetched && fetch != 2'd2) begin
            list_raddr = row_list + row;          // the row's neuron, out of its list next cycle
            n_fetch = fetch + 1'b1;
            if (fetch == 2'd1) n_row_j = list_q;
        end else if (col < cols) begin
            e_valid = 1; e_kind = col_kind; e_chain = col != 0; e_listed = col_listed;
            e_j = rows_fetched ? row_j : row;
            list_raddr = col_list + col;
            n_col = col + 1'b1;
        end else begin
            e_valid = row_element;
            e_kind = (two_per_row && sub) ? second_kind : row_kind;
            e_chain = cols != 0 || (two_per_row && sub) || (tail && row != 0);
            e_j = rows_fetched ? row_j : row;
            if (rows_listed) begin e_listed = LISTED_J; list_raddr = row_list + row; end
            if (two_per_row && !sub)
                n_sub = 1;
            else begin
                n_row = row + 1'b1; n_col = 0; n_sub = 0; n_fetch = 0;
            end
        end
    end

    // -- the stages' registers: where each element's results go ------------------------------------
    reg                        a_valid = 0, r_valid = 0, m_valid = 0, x_valid = 0;
    reg [`EL_ELEMENT_BITS-1:0] a_kind, r_kind, m_kind, x_kind;
    reg                        a_chain, r_chain, r_target;
    reg [1:0]                  a_listed;
    reg [LB-1:0]               a_l, r_l, m_l, x_l;
    reg [CB-1:0]               a_j, a_i;
    reg [CB-1:0]               r_index, m_index, x_index;   // the element's neuron (its input: input_trace)
    reg [31:0]                 r_at, m_at, x_at;            // where its value goes, in the buffer its kind writes
    wire busy = a_valid | r_valid | m_valid | x_valid;

    function reads_weights(input [`EL_ELEMENT_BITS-1:0] k);
        reads_weights = k == `EL_E_SUM || k == `EL_E_BACK_SUM || k == `EL_E_UPDATE_WEIGHT;
    endfunction
    function reads_thresholds(input [`EL_ELEMENT_BITS-1:0] k);
        reads_thresholds = k == `EL_E_LIF || k == `EL_E_SPIKE_ERROR || k == `EL_E_HIDDEN_ERROR
                           || k == `EL_E_APPLY_THRESHOLD;
    endfunction
    // an element issued now reads at A next cycle, when the element now at M writes at X
    wire stall = e_valid && ((WEIGHTS_SINGLE_PORT != 0 && reads_weights(e_kind) && m_valid
                              && m_kind == `EL_E_UPDATE_WEIGHT)
                             || (THRESHOLDS_SINGLE_PORT != 0 && reads_thresholds(e_kind) && m_valid
                                 && m_kind == `EL_E_APPLY_THRESHOLD));

    // -- A: indices out of the lists, addresses ----------------------------------------------------
    wire [CB-1:0] a_jj = (a_listed == LISTED_J) ? list_q : a_j;
    wire [CB-1:0] a_ii = (a_listed == LISTED_I) ? list_q : a_i;
    wire          a_back = a_kind == `EL_E_BACK_SUM;
    wire [LB-1:0] a_wl = a_back ? a_l + 1'b1 : a_l;              // a back sum reads the upper layer's weights
    wire [31:0]   a_fan_in = field(N_IN, a_wl);
    wire [CB-1:0] a_wrow = a_back ? list_q : a_jj;
    wire [31:0]   a_row_base = wide(a_wrow) * wide(a_fan_in[CB-1:0]);
    wire [31:0]   a_n = field(N_OFF, a_l) + wide(a_jj);
    wire [31:0]   a_ln = field(LEARN_OFF, a_l) + wide(a_jj);
    wire [31:0]   a_t = field(IN_OFF, a_l) + wide(a_ii);
    wire [31:0]   a_w = field(W_AT, a_wl) + a_row_base + wide(a_back ? a_jj : a_ii);
    wire          a_reads_x = a_kind == `EL_E_INPUT_TRACE || a_kind == `EL_E_SUM;
    wire [31:0]   a_x = (a_l == 0) ? wide(a_ii) : based(N_OFF, a_l - 1'b1, INPUTS) + wide(a_ii);
    wire [31:0]   a_byte = a_reads_x ? a_x : INPUTS + a_n;     // an input (pixel, spike below) or the neuron's spike
    wire [31:0]   a_error = a_back ? field(LEARN_OFF, a_wl) + wide(list_q) : a_ln;
    reg  [31:0]   a_at;
    always @(*)
        case (a_kind)
            `EL_E_LIF, `EL_E_LI, `EL_E_APPLY_THRESHOLD: a_at = a_n;
            `EL_E_INPUT_TRACE:                          a_at = a_t;
            `EL_E_UPDATE_WEIGHT:                        a_at = a_w;
            `EL_E_ZERO, `EL_E_SUM_STORE:                a_at = wide(a_jj);
            default:                                    a_at = a_ln;
        endcase

    // -- the buffers ---------------------------------------------------------------------------------
    wire               idle = phase == IDLE;
    wire               cfg_take = cfg_valid && idle;
    wire               cfg_to_w = cfg_take && cfg_write && cfg_addr < TH_BASE;
    wire               cfg_to_th = cfg_take && cfg_write && cfg_addr >= TH_BASE && cfg_addr < LEAK_BASE;
    wire [31:0]        cfg_word = {{(32 - CFG_BITS){1'b0}}, cfg_addr};
    wire [31:0]        cfg_th_addr = cfg_word - TH_BASE, cfg_leak_addr = cfg_word - LEAK_BASE;
    wire signed [63:0] value;
    wire               spike;
    wire [15:0]        w_q;
    wire [31:0]        th_q, v_q, xt_q, tht_q, at_q, d_q;
    wire [7:0]         byte_q;
    wire [SUM_BITS-1:0] sums_q;
    wire [31:0]        x_zero_at = x_at;
    wire x_zero = x_valid && x_kind == `EL_E_ZERO;
    wire x_step = x_valid && (x_kind == `EL_E_LIF || x_kind == `EL_E_LI);
    wire x_error = x_valid && (x_kind == `EL_E_SPIKE_ERROR || x_kind == `EL_E_LI_ERROR
                               || x_kind == `EL_E_HIDDEN_ERROR);
    wire receiving = in_valid && in_ready;
    wire [31:0] w_raddr = idle ? {{(32 - CFG_BITS){1'b0}}, cfg_addr} : a_w;
    wire [31:0] w_waddr = idle ? {{(32 - CFG_BITS){1'b0}}, cfg_addr} : x_at;
    wire [31:0] th_raddr = idle ? cfg_th_addr : a_n;
    wire [31:0] th_waddr = idle ? cfg_th_addr : x_at;
    wire [31:0] byte_waddr = receiving ? wide(received) : INPUTS + x_at;

    el_memory #(.WIDTH(16), .DEPTH(WEIGHTS), .SINGLE_PORT(WEIGHTS_SINGLE_PORT), .INIT(WEIGHTS_INIT)) weights (
        .clk(clk), .raddr(w_raddr[WA-1:0]), .rdata(w_q), .we(cfg_to_w || (x_valid && x_kind == `EL_E_UPDATE_WEIGHT)),
        .waddr(w_waddr[WA-1:0]), .wdata(idle ? cfg_wdata[15:0] : value[15:0]));
    el_memory #(.WIDTH(32), .DEPTH(NEURONS), .SINGLE_PORT(THRESHOLDS_SINGLE_PORT), .INIT(THRESHOLDS_INIT)) thresholds (
        .clk(clk), .raddr(th_raddr[NA-1:0]), .rdata(th_q), .we(cfg_to_th || (x_valid && x_kind == `EL_E_APPLY_THRESHOLD)),
        .waddr(th_waddr[NA-1:0]), .wdata(idle ? cfg_wdata : value[31:0]));
    el_memory #(.WIDTH(32), .DEPTH(NEURONS)) membrane (
        .clk(clk), .raddr(a_n[NA-1:0]), .rdata(v_q), .we(x_step || (x_zero && x_zero_at < NEURONS)),
        .waddr(x_at[NA-1:0]), .wdata(x_zero ? 32'd0 : value[31:0]));
    el_memory #(.WIDTH(8), .DEPTH(BYTES)) bytes (
        .clk(clk), .raddr(a_byte[BA-1:0]), .rdata(byte_q), .we(receiving || x_step || (x_zero && x_zero_at < NEURONS)),
        .waddr(byte_waddr[BA-1:0]), .wdata(receiving ? in_pixel : {7'd0, spike}));
    el_memory #(.WIDTH(32), .DEPTH(TRACE_DEPTH)) input_trace (
        .clk(clk), .raddr(a_t[TA-1:0]), .rdata(xt_q),
        .we((x_valid && x_kind == `EL_E_INPUT_TRACE) || (x_zero && x_zero_at < TRACES)),
        .waddr(x_at[TA-1:0]), .wdata(x_zero ? 32'd0 : value[31:0]));
    el_memory #(.WIDTH(32), .DEPTH(LEARN_DEPTH)) threshold_trace (
        .clk(clk), .raddr(a_ln[LA-1:0]), .rdata(tht_q),
        .we((x_valid && x_kind == `EL_E_THRESHOLD_TRACE) || (x_zero && x_zero_at < LEARN_NEURONS)),
        .waddr(x_at[LA-1:0]), .wdata(x_zero ? 32'd0 : value[31:0]));
    el_memory #(.WIDTH(32), .DEPTH(LEARN_DEPTH)) leak_trace (
        .clk(clk), .raddr(a_ln[LA-1:0]), .rdata(at_q),
        .we((x_valid && x_kind == `EL_E_LEAK_TRACE) || (x_zero && x_zero_at < LEARN_NEURONS)),
        .waddr(x_at[LA-1:0]), .wdata(x_zero ? 32'd0 : value[31:0]));
    el_memory #(.WIDTH(32), .DEPTH(LEARN_DEPTH)) error (
        .clk(clk), .raddr(a_error[LA-1:0]), .rdata(d_q), .we(x_error || (x_valid && x_kind == `EL_E_BACK_GATE)),
        .waddr(x_at[LA-1:0]), .wdata(value[31:0]));
    el_memory #(.WIDTH(SUM_BITS), .DEPTH(FIRST_SIZE)) input_sums (
        .clk(clk), .raddr(a_jj[SA-1:0]), .rdata(sums_q), .we(x_valid && x_kind == `EL_E_SUM_STORE),
        .waddr(x_at[SA-1:0]), .wdata(value[SUM_BITS-1:0]));

    // the lists: written at X (and while a sample arrives), read by G
    reg        push;
    reg [31:0] push_addr;
    reg [CB-1:0] push_value;
    always @(*) begin
        push = 0; push_addr = 0; push_value = x_index;
        if (receiving) begin
            push = in_pixel != 0; push_addr = wide(nzx_count); push_value = received;
        end else if (x_valid && x_kind == `EL_E_INPUT_TRACE) begin
            push = value != 0; push_addr = based(IN_OFF, x_l, LIST_T) + wide(nzt_count[at(x_l)]);
        end else if (x_step) begin
            push = spike; push_addr = based(N_OFF, x_l, LIST_S) + wide(nzs_count[at(x_l)]);
        end else if (x_error) begin
            push = value != 0; push_addr = based(LEARN_OFF, x_l, LIST_D) + wide(nzd_count[at(x_l)]);
        end
    end
    wire [INDEX_BITS-1:0] list_index;
    el_memory #(.WIDTH(INDEX_BITS), .DEPTH(LIST_SIZE)) lists (
        .clk(clk), .raddr(list_raddr[QA-1:0]), .rdata(list_index), .we(push), .waddr(push_addr[QA-1:0]),
        .wdata(push_value[INDEX_BITS-1:0]));
    assign list_q = {{(CB - INDEX_BITS){1'b0}}, list_index};

    // -- R: the datapath's operands --------------------------------------------------------------
    wire [31:0]        r_reset_shift = field(RESET_SHIFT, r_l);
    wire [31:0]        r_weight_frac = field(WEIGHT_FRAC, r_l), r_upper_frac = field(WEIGHT_FRAC, r_l + 1'b1);
    wire signed [31:0] potential;
    el_potential u_of (.membrane(v_q), .spike(byte_q[0]), .th(th_q), .reset_shift(r_reset_shift[0]),
                       .potential(potential));
    reg signed [31:0] r_trace;
    always @(*)
        case (r_kind)
            `EL_E_INPUT_TRACE, `EL_E_UPDATE_WEIGHT:      r_trace = xt_q;
            `EL_E_THRESHOLD_TRACE, `EL_E_THRESHOLD_GRAD: r_trace = tht_q;
            default:                                     r_trace = at_q;
        endcase
    // each op's shift from the layer table: a constant when the layers agree (docs/fpga.md)
    wire [31:0]       first_frac = field(WEIGHT_FRAC, 0);
    wire [4:0]        r_lift = `EL_STATE_FRAC - x_frac(r_l);
    wire signed [7:0] r_current_shift = r_weight_frac[7:0] - `EL_STATE_FRAC;      // layers above 0 read spikes
    wire signed [8:0] r_weight_shift = 2 * `EL_STATE_FRAC - r_weight_frac[8:0] + lr(LR_WEIGHT, decay);
    // layer 0's current, from the exact sums of its direct input (docs/numerics.md §5b)
    wire signed [31:0] first_current;
    wire signed [7:0]  first_shift = first_frac[7:0] + `EL_INPUT_FRAC - `EL_STATE_FRAC;
    el_current current_from_sums (.sum({{(64 - SUM_BITS){sums_q[SUM_BITS-1]}}, sums_q}), .shift(first_shift),
                                  .current(first_current));
    wire signed [8:0]  threshold_shift = `EL_STATE_FRAC + lr(LR_THRESHOLD, decay);
    wire signed [8:0]  leak_shift = `EL_STATE_FRAC + lr(LR_LEAK, decay);
    wire        r_sums = (r_kind == `EL_E_LIF || r_kind == `EL_E_LI) && r_l == 0;
    wire        cfg_rng_learn = cfg_take && cfg_write && cfg_addr == REG_BASE;
    wire [31:0] rng_learn;
    wire signed [31:0] unused_potential, unused_current;
    wire        unused_valid;
    wire [`EL_ELEMENT_BITS-1:0] unused_kind;
    el_datapath #(.RNG_LEARN(RNG_LEARN), .KINDS(KINDS)) datapath (
        .clk(clk), .in_valid(r_valid), .in_kind(r_kind), .in_chain(r_chain), .in_w(w_q), .in_x({24'd0, byte_q}),
        .in_a({15'd0, leaks[at(r_l)]}), .in_v(v_q), .in_u(potential), .in_th(th_q), .in_s(byte_q[0]), .in_trace(r_trace),
        .in_d(d_q), .in_g(r_sums ? {{32{first_current[31]}}, first_current} : 64'sd0), .in_target(r_target),
        .in_lift(r_lift), .in_current_shift(r_current_shift), .in_gate_shift(r_upper_frac[7:0]),
        .in_weight_shift(r_weight_shift), .in_threshold_shift(threshold_shift),
        .in_leak_shift(leak_shift), .in_k(SURROGATE_K[7:0]), .in_reset_shift(r_reset_shift[0]),
        .in_floor(`EL_THRESHOLD_FLOOR), .rng_load(cfg_rng_learn), .rng_value(cfg_wdata), .rng(rng_learn),
        .out_valid(unused_valid), .out_kind(unused_kind), .out_value(value), .out_potential(unused_potential),
        .out_spike(spike), .out_current(unused_current));

    // -- the phases: what follows each --------------------------------------------------------------
    wire [31:0]  flags = field(FLAGS, l);
    wire         trainable = (flags & `EL_TRAINABLE) != 0;
    wire         learns_th = (flags & `EL_LEARN_THRESHOLD) != 0, learns_leak = (flags & `EL_LEARN_LEAK) != 0;
    wire         has_errors = trainable && nzd_count[at(l)] != 0;
    reg [4:0]    next_phase;
    reg [LB-1:0] next_l;
    always @(*) begin
        next_phase = phase; next_l = l;
        case (phase)
            ZERO:      begin next_phase = SUMS; next_l = 0; end
            SUMS:      next_phase = LAYER;
            LAYER:     next_phase = (learn && trainable) ? TRACE_IN : FORWARD;
            TRACE_IN:  next_phase = TRACE_N;
            TRACE_N:   next_phase = FORWARD;
            FORWARD:   if (l != R) begin next_phase = LAYER; next_l = l + 1'b1; end
                       else next_phase = learn ? ERROR_OUT : STEP_END;
            ERROR_OUT: if (R - 1 < LOWEST) begin next_phase = UPDATE; next_l = LOWEST; end
                       else begin next_phase = HIDDEN; next_l = R - 1; end
            HIDDEN:    if (nzd_count[at(up)] != 0) next_phase = BACK;
                       else if (l == LOWEST) next_phase = UPDATE;          // every error below is 0
                       else next_l = l - 1'b1;
            BACK:      next_phase = ERROR_HID;
            ERROR_HID: if (l == LOWEST) next_phase = UPDATE;
                       else begin next_phase = HIDDEN; next_l = l - 1'b1; end
            UPDATE:    if (l == LAYERS) begin
                           next_phase = (LOWEST == 0 && nzd_count[0] != 0) ? REFRESH : STEP_END; next_l = 0;
                       end else if (has_errors && nzt_count[at(l)] != 0) next_phase = UPDATE_W;
                       else if (has_errors && learns_th) next_phase = UPDATE_TH;
                       else if (has_errors && learns_leak) next_phase = UPDATE_LEAK;
                       else next_l = l + 1'b1;
            UPDATE_W:  if (learns_th) next_phase = UPDATE_TH;
                       else if (learns_leak) next_phase = UPDATE_LEAK;
                       else begin next_phase = UPDATE; next_l = l + 1'b1; end
            UPDATE_TH: if (learns_leak) next_phase = UPDATE_LEAK;
                       else begin next_phase = UPDATE; next_l = l + 1'b1; end
            UPDATE_LEAK: begin next_phase = UPDATE; next_l = l + 1'b1; end
            REFRESH:   next_phase = STEP_END;
            default: ;
        endcase
    end

    // -- the clock ------------------------------------------------------------------------------------
    wire decide = phase == LAYER || phase == HIDDEN || phase == UPDATE;   // one cycle, no elements
    always @(posedge clk) begin
        a_valid <= e_valid && !stall;  a_kind <= e_kind;  a_chain <= e_chain;  a_listed <= e_listed;
        a_l <= l;  a_j <= e_j;  a_i <= e_i;
        r_valid <= a_valid;  r_kind <= a_kind;  r_chain <= a_chain;  r_l <= a_l;  r_at <= a_at;
        r_index <= (a_kind == `EL_E_INPUT_TRACE) ? a_ii : a_jj;
        r_target <= a_jj == {{(CB - LABEL_BITS){1'b0}}, label};
        m_valid <= r_valid;  m_kind <= r_kind;  m_l <= r_l;  m_index <= r_index;  m_at <= r_at;
        x_valid <= m_valid;  x_kind <= m_kind;  x_l <= m_l;  x_index <= m_index;  x_at <= m_at;

        // X: the results that are not buffer writes
        if (push && !receiving) begin
            if (x_kind == `EL_E_INPUT_TRACE) nzt_count[at(x_l)] <= nzt_count[at(x_l)] + 1'b1;
            else if (x_step) nzs_count[at(x_l)] <= nzs_count[at(x_l)] + 1'b1;
            else nzd_count[at(x_l)] <= nzd_count[at(x_l)] + 1'b1;
        end
        if (x_step && x_l == R)
            scores[x_index[SI-1:0]] <= scores[x_index[SI-1:0]] + (READOUT_LI ? value[SCORE_BITS-1:0] : {{(SCORE_BITS - 1){1'b0}}, spike});
        if (x_valid && x_kind == `EL_E_APPLY_LEAK)
            leaks[at(x_l)] <= value[16:0];

        // G: the loop, then the phase
        if (!stall) begin
            row <= n_row;  col <= n_col;  sub <= n_sub;  fetch <= n_fetch;  row_j <= n_row_j;
        end
        cfg_rvalid <= cfg_take && !cfg_write;
        case (phase)
            IDLE: if (cfg_take) begin
                      if (cfg_write && cfg_addr >= LEAK_BASE && cfg_addr < REG_BASE)
                          leaks[cfg_leak_addr[LI-1:0]] <= cfg_wdata[16:0];
                      if (SCHEDULE != 0 && cfg_write && cfg_addr == REG_BASE + 1) learned <= cfg_wdata;
                      if (SCHEDULE != 0 && cfg_write && cfg_addr == REG_BASE + 2) decay_count <= cfg_wdata[5:0];
                      if (SCHEDULE != 0 && cfg_write && cfg_addr == REG_BASE + 3) since <= cfg_wdata;
                  end else if (in_valid) begin
                      phase <= RECEIVE;  received <= 0;  nzx_count <= 0;
                  end
            RECEIVE: if (receiving) begin
                      if (received == 0) begin
                          learn <= in_learn && LOWEST < LAYERS;  label <= in_label;
                          for (n = 0; n < CLASSES; n = n + 1) scores[n] <= 0;
                      end
                      received <= received + 1'b1;
                      if (in_pixel != 0) nzx_count <= nzx_count + 1'b1;
                      if (received == INPUTS - 1) begin
                          phase <= ZERO;  row <= 0;  col <= 0;  sub <= 0;  fetch <= 0;  t <= 0;
                      end
                  end
            STEP_END: begin
                      row <= 0;  col <= 0;  sub <= 0;  fetch <= 0;  l <= 0;
                      if (t + 1'b1 == STEPS) begin
                          phase <= RESULT;  result <= 0;
                          if (SCHEDULE != 0 && learn && learned != `EL_MAX_LEARNED) begin   // §6c: count it
                              learned <= learned + 1'b1;
                              if (decay_count < SCHEDULE_STEPS) begin
                                  if (since + 1'b1 == SCHEDULE_EVERY) begin
                                      decay_count <= decay_count + 1'b1;  since <= 0;
                                  end else
                                      since <= since + 1'b1;
                              end
                          end
                      end else begin
                          t <= t + 1'b1;  phase <= LAYER;
                      end
                  end
            RESULT: if (out_ready) begin
                      result <= result + 1'b1;
                      if (result == CLASSES - 1) phase <= IDLE;
                  end
            default: if (decide || (done && !busy)) begin
                      phase <= next_phase;  l <= next_l;
                      row <= 0;  col <= 0;  sub <= 0;  fetch <= 0;
                      if (next_phase == FORWARD) nzs_count[at(next_l)] <= 0;
                      if (next_phase == TRACE_IN) nzt_count[at(next_l)] <= 0;
                      if (next_phase == ERROR_OUT) for (n = 0; n < LAYERS; n = n + 1) nzd_count[n] <= 0;
                  end
        endcase
        if (rst) begin
            phase <= IDLE;  a_valid <= 0;  r_valid <= 0;  m_valid <= 0;  x_valid <= 0;
        end
    end

    // -- the streams ------------------------------------------------------------------------------------
    assign in_ready = phase == RECEIVE;
    assign out_valid = phase == RESULT;
    assign out_score = scores[result[SI-1:0]];
    assign out_last = result == CLASSES - 1;
    assign cfg_ready = idle;
    reg [31:0] cfg_reg;
    reg [1:0]  cfg_from;                         // what a read returns: 0 a weight, 1 a threshold, 2 a register
    always @(posedge clk) begin
        cfg_from <= (cfg_addr < TH_BASE) ? 2'd0 : (cfg_addr < LEAK_BASE) ? 2'd1 : 2'd2;
        if (cfg_addr >= LEAK_BASE && cfg_addr < REG_BASE) cfg_reg <= {15'd0, leaks[cfg_leak_addr[LI-1:0]]};
        else if (cfg_addr == REG_BASE) cfg_reg <= rng_learn;
        else if (cfg_addr == REG_BASE + 1) cfg_reg <= learned;
        else if (cfg_addr == REG_BASE + 2) cfg_reg <= {26'd0, decay};
        else cfg_reg <= since;
    end
    always @(*) cfg_rdata = (cfg_from == 0) ? {{16{w_q[15]}}, w_q} : (cfg_from == 1) ? th_q : cfg_reg;
endmodule
`default_nettype wire
