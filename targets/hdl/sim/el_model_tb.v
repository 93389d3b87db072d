// Drives a generated el_model (edgelearn.hdl.generate) through its ports, as a host would, from
// commands on stdin (edgelearn/hdl/sim.py's Simulation writes them and reads the answers).
// The same file runs in iverilog and in verilator (--timing). Numbers are hex.
//   1 learn label p0 .. p{INPUTS-1}   one sample (pixels, Q8) -> "R cycles score0 .. score{CLASSES-1}"
//   2 addr value                      a parameter-port write (no answer)
//   3 addr count                      count parameter-port reads -> "D v0 .. v{count-1}"
//   0                                 the end
// cycles: from the first pixel offered to the last score taken, both included.
`default_nettype none
module el_model_tb;
    reg clk = 1'b0;
    always #1 clk = ~clk;
    reg                             in_valid = 0, in_learn = 0, out_ready = 0, cfg_valid = 0, cfg_write = 0;
    reg  [7:0]                      in_pixel = 0;
    reg  [`EL_MODEL_LABEL_BITS-1:0] in_label = 0;
    reg  [`EL_MODEL_CFG_BITS-1:0]   cfg_addr = 0;
    reg  [31:0]                     cfg_wdata = 0;
    wire                            in_ready, out_valid, out_last, cfg_ready, cfg_rvalid;
    wire [`EL_MODEL_SCORE_BITS-1:0] out_score;
    wire [31:0]                     cfg_rdata;
    el_model dut (
        .clk(clk), .rst(1'b0), .in_valid(in_valid), .in_ready(in_ready), .in_pixel(in_pixel), .in_learn(in_learn),
        .in_label(in_label), .out_valid(out_valid), .out_ready(out_ready), .out_score(out_score), .out_last(out_last),
        .cfg_valid(cfg_valid), .cfg_ready(cfg_ready), .cfg_write(cfg_write), .cfg_addr(cfg_addr),
        .cfg_wdata(cfg_wdata), .cfg_rvalid(cfg_rvalid), .cfg_rdata(cfg_rdata));

    reg [7:0]  pixels [0:`EL_MODEL_INPUTS-1];
    reg [31:0] op, a, b, k;
    reg        taken;
    integer    fd, got, i, cycles;
    initial begin
        fd = $fopen("/dev/stdin", "r");
        got = $fscanf(fd, "%h", op);
        while (got == 1 && op != 0) begin
            if (op == 1) begin
                got = $fscanf(fd, "%h %h", a, b);
                for (i = 0; i < `EL_MODEL_INPUTS; i = i + 1) got = $fscanf(fd, "%h", pixels[i]);
                cycles = 0;
                i = 0;
                while (i < `EL_MODEL_INPUTS) begin            // offer each pixel until it is taken
                    @(negedge clk);
                    in_valid = 1; in_pixel = pixels[i]; in_learn = a[0]; in_label = b[`EL_MODEL_LABEL_BITS-1:0];
                    taken = in_ready;
                    @(posedge clk);
                    cycles = cycles + 1;
                    if (taken) i = i + 1;
                end
                @(negedge clk);
                in_valid = 0; out_ready = 1;
                $write("R");
                i = 0;
                while (i < `EL_MODEL_CLASSES) begin           // take each score as it is offered
                    taken = out_valid;
                    if (taken) $write(" %0h", out_score);
                    @(posedge clk);
                    cycles = cycles + 1;
                    if (taken) i = i + 1;
                    @(negedge clk);
                end
                out_ready = 0;
                $write(" %0h\n", cycles);
            end else if (op == 2) begin
                got = $fscanf(fd, "%h %h", a, b);
                @(negedge clk);
                while (!cfg_ready) @(negedge clk);
                cfg_valid = 1; cfg_write = 1; cfg_addr = a[`EL_MODEL_CFG_BITS-1:0]; cfg_wdata = b;
                @(negedge clk);
                cfg_valid = 0; cfg_write = 0;
            end else if (op == 3) begin
                got = $fscanf(fd, "%h %h", a, b);
                $write("D");
                for (k = 0; k < b; k = k + 1) begin
                    @(negedge clk);
                    while (!cfg_ready) @(negedge clk);
                    cfg_valid = 1; cfg_write = 0; cfg_addr = a[`EL_MODEL_CFG_BITS-1:0] + k[`EL_MODEL_CFG_BITS-1:0];
                    @(negedge clk);
                    cfg_valid = 0;
                    while (!cfg_rvalid) @(negedge clk);
                    $write(" %0h", cfg_rdata);
                end
                $write("\n");
            end
            $fflush;
            got = $fscanf(fd, "%h", op);
        end
        $finish;
    end
endmodule
`default_nettype wire
