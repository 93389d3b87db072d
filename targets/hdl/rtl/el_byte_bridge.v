// The core's streams and parameter port over one byte stream each way (a UART on a board):
//   host -> chip  01 flags label_lo label_hi p0 .. p{INPUTS-1}   a sample; flags bit 0: learn
//                 02 a0 a1 a2 v0 v1 v2 v3                        write word v at address a
//                 03 a0 a1 a2                                    read the word at address a
//   chip -> host  81 then each class's score, SCORE_BITS rounded up to bytes, little-endian
//                 83 v0 v1 v2 v3                                 the word read
// Multi-byte fields are little-endian; a byte that starts no command is dropped. One command at a
// time: the host waits for a sample's scores (a read's word) before it sends the next command.
`default_nettype none
module el_byte_bridge #(
    parameter INPUTS = 64,
    parameter SCORE_BITS = 4,
    parameter LABEL_BITS = 4,
    parameter CFG_BITS = 15
) (
    input  wire                  clk,
    input  wire                  rx_valid,      // bytes from the host (no back-pressure: a UART)
    input  wire [7:0]            rx_data,
    output wire                  tx_valid,      // bytes to the host
    input  wire                  tx_ready,
    output wire [7:0]            tx_data,
    // the core
    output wire                  in_valid,
    input  wire                  in_ready,
    output wire [7:0]            in_pixel,
    output wire                  in_learn,
    output wire [LABEL_BITS-1:0] in_label,
    input  wire                  out_valid,
    output wire                  out_ready,
    input  wire [SCORE_BITS-1:0] out_score,
    input  wire                  out_last,
    output wire                  cfg_valid,
    input  wire                  cfg_ready,
    output wire                  cfg_write,
    output wire [CFG_BITS-1:0]   cfg_addr,
    output wire [31:0]           cfg_wdata,
    input  wire                  cfg_rvalid,
    input  wire [31:0]           cfg_rdata
);
    localparam SCORE_BYTES = (SCORE_BITS + 7) / 8;
    localparam SEND = (SCORE_BYTES > 5) ? 8 * SCORE_BYTES : 40;       // bits of the longest reply piece
    localparam [7:0] SAMPLE = 8'h01, WRITE = 8'h02, READ = 8'h03, RESULTS = 8'h81, WORD = 8'h83;
    localparam [2:0] COMMAND = 0, FIELDS = 1, PIXELS = 2, PORT = 3, READING = 4;

    // what is being sent to the host, a byte at a time (below), and whether another piece may load
    reg [SEND-1:0] sending = 0;
    reg [3:0]  sending_left = 0;
    reg        header_sent = 0;          // 81 went out for the scores now streaming
    wire       free = sending_left == 0 || (sending_left == 1 && tx_ready);

    // -- host to chip: a command, its fields, then its pixels or its port access --------------------
    reg [2:0]  state = COMMAND;
    reg [7:0]  command = 0;
    reg [55:0] fields = 0;               // the command's field bytes, shifted in from the top
    reg [15:0] count = 0;                // field bytes, then pixels
    reg        pixel_held = 0;           // a pixel that arrived and the core has not taken yet
    reg [7:0]  pixel = 0;
    wire [15:0] field_bytes = (command == WRITE) ? 16'd7 : 16'd3;
    always @(posedge clk) begin
        case (state)
            COMMAND: if (rx_valid && (rx_data == SAMPLE || rx_data == WRITE || rx_data == READ)) begin
                         command <= rx_data; count <= 0; state <= FIELDS;
                     end
            FIELDS:  if (rx_valid) begin
                         fields <= {rx_data, fields[55:8]};
                         count <= count + 1'b1;
                         if (count + 1'b1 == field_bytes) begin
                             count <= 0;
                             state <= (command == SAMPLE) ? PIXELS : PORT;
                         end
                     end
            PIXELS:  begin
                         if (rx_valid) begin pixel <= rx_data; pixel_held <= 1; end
                         if (pixel_held && in_ready) begin
                             pixel_held <= rx_valid;
                             count <= count + 1'b1;
                             if (count + 1'b1 == INPUTS) state <= COMMAND;
                         end
                     end
            PORT:    if (cfg_ready && free) state <= (command == READ) ? READING : COMMAND;
            READING: if (cfg_rvalid) state <= COMMAND;
            default: state <= COMMAND;
        endcase
    end
    // after n field bytes, the first is fields[8 * (7 - n) +: 8]: a sample's or a read's three in
    // fields[55:32], a write's seven in fields[55:0]
    wire [23:0] address = (command == WRITE) ? fields[23:0] : fields[55:32];
    assign in_valid = state == PIXELS && pixel_held;
    assign in_pixel = pixel;
    assign in_learn = fields[32];
    assign in_label = fields[40 +: LABEL_BITS];
    assign cfg_valid = state == PORT && free;      // a read's word goes out the cycle it comes
    assign cfg_write = command == WRITE;
    assign cfg_addr = address[CFG_BITS-1:0];
    assign cfg_wdata = fields[55:24];

    // -- chip to host: replies, a piece at a time ------------------------------------------------------
    assign tx_valid = sending_left != 0;
    assign tx_data = sending[7:0];
    assign out_ready = free && header_sent;
    always @(posedge clk) begin
        if (tx_valid && tx_ready) begin
            sending <= {8'd0, sending[SEND-1:8]};
            sending_left <= sending_left - 1'b1;
        end
        if (free) begin
            if (state == READING && cfg_rvalid) begin
                sending <= {{(SEND - 40){1'b0}}, cfg_rdata, WORD}; sending_left <= 5;
            end else if (out_valid && !header_sent) begin
                sending <= {{(SEND - 8){1'b0}}, RESULTS}; sending_left <= 1; header_sent <= 1;
            end else if (out_valid) begin
                sending <= {{(SEND - SCORE_BITS){1'b0}}, out_score}; sending_left <= SCORE_BYTES;
                if (out_last) header_sent <= 0;
            end
        end
    end
endmodule
`default_nettype wire
