"""The keys of the fleet's Flower messages and of the SuperNodes' node config, shared by the
ServerApp and the ClientApp (docs/fleet.md, "A round"). No Flower import: the runner names
the node config with them too.

A ``train`` message (ServerApp -> ClientApp) holds one ConfigRecord, CONFIG:
    ROUND (0-based), MODEL (the global model's blob), DATA, PARTITION, BOARDS, SEED, EPOCHS.
Its reply holds RESULT (a ConfigRecord: MODEL, the pulled blob; PARTITION_ID; BOARD_NAME, as the
board's READY names itself; PUSHED_CRC, the crc32 of the blob pushed) and METRICS (a
MetricRecord: SAMPLES learned, the weight of the update; LOCAL_CORRECT of LOCAL_TESTED local
test samples on the board; LINK_SENT and LINK_RECEIVED bytes on the serial link; SECONDS;
RETRANSMISSIONS).
"""
CONFIG, RESULT, METRICS = "config", "result", "metrics"
TRAIN = "train"

ROUND, MODEL, DATA, PARTITION, BOARDS, SEED, EPOCHS = "round", "model", "data", "partition", "boards", "seed", "epochs"
PARTITION_ID, BOARD_NAME, PUSHED_CRC = "partition-id", "board-name", "pushed-crc"
SAMPLES = "num-examples"          # Flower's name for an update's weight
LOCAL_CORRECT, LOCAL_TESTED = "local-correct", "local-tested"
LINK_SENT, LINK_RECEIVED, SECONDS, RETRANSMISSIONS = "link-sent", "link-received", "seconds", "retransmissions"

# a SuperNode's --node-config
NODE_BOARD, NODE_PARTITION, NODE_PARTITIONS, NODE_PROGRESS = "board", "partition-id", "num-partitions", "progress-file"
