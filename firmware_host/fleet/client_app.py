"""The Flower ClientApp of a fleet: one board, driven over its serial link (docs/fleet.md).

Each ``train`` message carries the round's global model (a blob) and the run's data settings;
the ClientApp gives the model the seed of this board and round (``client_seed``), pushes and
commits it, streams the board's share of the training data with on-device learning, pulls
the learned parameters, runs the board's local test set on it, and replies with the pulled
blob and the number of samples learned. A board that drops out or stops answering raises here
(LinkTimeout, BoardError): Flower sends the ServerApp an error reply and the round goes on
without it.

The SuperNode's ``--node-config`` names the board and its share:

    board="fleet-3"  (a name from the board registry, or any pyserial URL)
    partition-id=3 num-partitions=8
    progress-file="/path/board-3.jsonl"   (optional: a JSON line per phase and per 16 samples)

A name is resolved at every round, so a board that was restarted under the same name (at
another port) is found again: it rejoins with the current global model.
"""
from __future__ import annotations

import json
import time
import zlib
from dataclasses import replace
from pathlib import Path

import numpy as np
import serial
from flwr.app import ConfigRecord, Context, Message, MetricRecord, RecordDict
from flwr.clientapp import ClientApp

from edgelearn import datasets
from edgelearn.fleet.aggregate import client_seed
from edgelearn.fleet.partition import share
from edgelearn.modelblob import check_blob, to_blob

from .. import boards
from ..board import Board
from ..demo import CountingPort
from . import records as msg_keys

app = ClientApp()


class BoardIncomplete(RuntimeError):
    """The board did not learn every sample it was sent."""


class Progress:
    """JSON lines in the node's progress file (none without one): what the runner shows."""

    def __init__(self, path: str | None, round_: int, board: int):
        self.path, self.round, self.board = (Path(path) if path else None), round_, board

    def __call__(self, phase: str, done: int = 0, total: int = 0) -> None:
        if self.path is None:
            return
        line = {"round": self.round, "board": self.board, "phase": phase, "done": done, "total": total,
                "time": time.time()}
        with self.path.open("a") as f:
            f.write(json.dumps(line) + "\n")


def run_round(url: str, blob: bytes, part, epochs: int, progress: Progress) -> dict:
    """Push, learn, pull, test on the board at ``url``: what the reply carries."""
    port = CountingPort(serial.serial_for_url(url, baudrate=115200, timeout=0.01))
    t0 = time.monotonic()
    with Board(url, ser=port) as b:
        ready = b.hello()
        progress("push", 0, len(blob))
        b.push_model(blob, progress=lambda done, total: progress("push", done, total))
        b.commit()
        b.set_mode("train")
        n = len(part.x_train)
        learned = 0
        for epoch in range(epochs):
            def learning(done: int, _total: int, epoch=epoch) -> None:
                if done % 16 == 0 or done == n:
                    progress("learn", epoch * n + done, epochs * n)
            results = b.stream(part.x_train, part.y_train, progress=learning)
            learned += sum(1 for r in results if r is not None and r.learned)
        if learned != epochs * n:
            raise BoardIncomplete(f"the board {ready.name} at {url} learned {learned} of the {epochs * n} samples "
                                  "it was sent")
        progress("pull")
        pulled = b.pull_params()
        progress("test", 0, len(part.x_test))
        predicted, _ = b.infer(part.x_test)
        progress("done")
        return {"pulled": pulled, "learned": learned, "board": ready.name,
                "correct": int(np.sum(predicted == part.y_test)), "tested": len(part.y_test),
                "sent": port.sent, "received": port.received, "seconds": time.monotonic() - t0,
                "retransmissions": b.counters.retransmissions}


@app.train()
def train(message: Message, context: Context) -> Message:
    config = message.content[msg_keys.CONFIG]
    node = context.node_config
    board, partition = str(node[msg_keys.NODE_BOARD]), int(node[msg_keys.NODE_PARTITION])
    boards_in_run = int(config[msg_keys.BOARDS])
    if int(node[msg_keys.NODE_PARTITIONS]) != boards_in_run:
        raise ValueError(f"this SuperNode's num-partitions is {node[msg_keys.NODE_PARTITIONS]}, the run's fleet has "
                         f"{boards_in_run} boards: start the SuperNode with num-partitions={boards_in_run}")
    round_ = int(config[msg_keys.ROUND])
    progress = Progress(node.get(msg_keys.NODE_PROGRESS), round_, partition)
    progress("start")
    data = datasets.load(str(config[msg_keys.DATA]))
    part = share(data, str(config[msg_keys.PARTITION]), boards_in_run, partition, int(config[msg_keys.SEED]))
    model = check_blob(bytes(config[msg_keys.MODEL]))
    model.learning = replace(model.learning, seed=client_seed(model.learning.seed, round_, partition))
    blob = to_blob(model)
    out = run_round(boards.resolve(board), blob, part, int(config[msg_keys.EPOCHS]), progress)
    reply = RecordDict({
        msg_keys.RESULT: ConfigRecord({msg_keys.MODEL: out["pulled"], msg_keys.PARTITION_ID: partition,
                                       msg_keys.BOARD_NAME: out["board"], msg_keys.PUSHED_CRC: zlib.crc32(blob)}),
        msg_keys.METRICS: MetricRecord({
            msg_keys.SAMPLES: out["learned"], msg_keys.LOCAL_CORRECT: out["correct"],
            msg_keys.LOCAL_TESTED: out["tested"], msg_keys.LINK_SENT: out["sent"],
            msg_keys.LINK_RECEIVED: out["received"], msg_keys.SECONDS: out["seconds"],
            msg_keys.RETRANSMISSIONS: out["retransmissions"]}),
    })
    return Message(reply, reply_to=message)
