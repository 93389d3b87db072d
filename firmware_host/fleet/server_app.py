"""The Flower ServerApp of a fleet: rounds of on-device learning, averaged in the numeric
contract (docs/fleet.md, docs/numerics.md §6d).

Every round it sends the current global model to every SuperNode online, waits for their
replies up to the round's timeout, averages the updates that pass ``check_update`` with
``fedavg``, and scores the new global model on the held-out test set with the C runtime
(bit-exact with the boards). A reply that is an error (a board that dropped out or timed out
raises in its ClientApp), that never comes, or whose model is refused, is skipped for that
round with its reason: it never reaches the aggregate. A SuperNode that comes back, or a
board restarted behind one, gets the current global model in the next round.

Run config (``[tool.flwr.app.config]`` of the app the runner writes): ``model`` (the initial
blob's path), ``out-dir``, ``rounds``, ``epochs``, ``data``, ``partition``, ``boards``,
``seed``, and in seconds ``round-timeout``, ``join-timeout`` (for every SuperNode to join at
the start) and ``rejoin-wait`` (at each round's start, for SuperNodes missing from the fleet:
one that was frozen or cut off counts as offline until its next heartbeat reaches the
SuperLink). It writes into ``out-dir``:
``events.jsonl`` (one JSON object a line: ``start``, ``reply``, ``round``, then ``done`` or
``failed``), and per round ``round-R/global.elm`` and the pulled ``round-R/board-K.elm``.
"""
from __future__ import annotations

import json
import time
import traceback
import zlib
from pathlib import Path

from flwr.app import ConfigRecord, Context, Message, RecordDict
from flwr.common.constant import ErrorCode
from flwr.serverapp import Grid, ServerApp

from edgelearn import datasets
from edgelearn.errors import ModelError
from edgelearn.fleet.aggregate import AggregationError, Update, check_update, client_seed, fedavg
from edgelearn.fleet.partition import global_test
from edgelearn.fleet.reference import accuracy
from edgelearn.modelblob import check_blob, to_blob

from . import records as keys

app = ServerApp()
POLL = 0.25          # seconds between two pulls of replies


class Events:
    """The run's events, one JSON line each, flushed as they happen (the runner follows them)."""

    def __init__(self, out_dir: Path):
        self.path = out_dir / "events.jsonl"

    def __call__(self, event: str, **fields) -> None:
        with self.path.open("a") as f:
            f.write(json.dumps({"event": event, "time": time.time(), **fields}) + "\n")


def wait_for_nodes(grid: Grid, boards: int, timeout: float) -> list[int]:
    """The SuperNodes online, once ``boards`` of them are or ``timeout`` seconds have passed."""
    deadline = time.monotonic() + timeout
    while True:
        nodes = sorted(grid.get_node_ids())
        if len(nodes) >= boards or time.monotonic() > deadline:
            return nodes
        time.sleep(POLL)


def collect(grid: Grid, sent: dict[str, int], timeout: float, on_reply) -> dict[int, Message]:
    """The replies to ``sent`` (message id -> node id) that arrive within ``timeout`` seconds,
    by node; ``on_reply(node, message)`` as each comes."""
    replies: dict[int, Message] = {}
    waiting = dict(sent)
    deadline = time.monotonic() + timeout
    while waiting and time.monotonic() < deadline:
        for reply in grid.pull_messages(list(waiting)):
            node = waiting.pop(reply.metadata.reply_to_message_id, None)
            if node is not None:
                replies[node] = reply
                on_reply(node, reply)
        if waiting:
            time.sleep(POLL)
    return replies


def refusal(error, timeout: float) -> str:
    """Why an error reply is skipped: Flower answers for a node whose message expired (its TTL
    is the round's timeout) or that went offline; the ClientApp's own errors say what failed."""
    if error.code in (ErrorCode.MESSAGE_UNAVAILABLE, ErrorCode.REPLY_MESSAGE_UNAVAILABLE):
        return f"no reply within the round's {timeout:g} s (Flower: {error.reason})"
    if error.code == ErrorCode.NODE_UNAVAILABLE:
        return f"its SuperNode went offline (Flower: {error.reason})"
    return f"the ClientApp failed: {error.reason}"


def accept(reply: Message, global_model, round_: int, seen: set[int], timeout: float) -> tuple[Update, dict]:
    """The update in ``reply``, checked, and its record; AggregationError or ModelError says
    why it is refused."""
    if reply.has_error():
        raise AggregationError(refusal(reply.error, timeout))
    result, metrics = reply.content[keys.RESULT], reply.content[keys.METRICS]
    partition = int(result[keys.PARTITION_ID])
    if partition in seen:
        raise AggregationError(f"a second reply for board {partition} in round {round_}")
    model = check_blob(bytes(result[keys.MODEL]))
    expected_seed = client_seed(global_model.learning.seed, round_, partition)
    if model.learning.seed != expected_seed:
        raise AggregationError(f"board {partition} learned with seed {model.learning.seed}, round {round_} gives it "
                               f"{expected_seed}")
    update = Update(model, int(metrics[keys.SAMPLES]), client=str(partition))
    check_update(global_model, update)
    record = {"board": partition, "name": str(result[keys.BOARD_NAME]), "samples": update.samples,
              "pushed_crc": int(result[keys.PUSHED_CRC]), "local_correct": int(metrics[keys.LOCAL_CORRECT]),
              "local_tested": int(metrics[keys.LOCAL_TESTED]), "link_sent": int(metrics[keys.LINK_SENT]),
              "link_received": int(metrics[keys.LINK_RECEIVED]), "seconds": round(float(metrics[keys.SECONDS]), 3),
              "retransmissions": int(metrics[keys.RETRANSMISSIONS]), "model_bytes": len(bytes(result[keys.MODEL]))}
    return update, record


def run_round(grid: Grid, context: Context, global_model, round_: int, events: Events, out_dir: Path,
              test_set) -> object:
    """One round; the new global model (the old one when no update was accepted)."""
    rc = context.run_config
    blob = to_blob(global_model)
    nodes = wait_for_nodes(grid, int(rc["boards"]), float(rc["rejoin-wait"]))
    config = {keys.ROUND: round_, keys.MODEL: blob, keys.DATA: str(rc["data"]), keys.PARTITION: str(rc["partition"]),
              keys.BOARDS: int(rc["boards"]), keys.SEED: int(rc["seed"]), keys.EPOCHS: int(rc["epochs"])}
    timeout = float(rc["round-timeout"])
    messages = [Message(RecordDict({keys.CONFIG: ConfigRecord(config)}), dst_node_id=node,
                        message_type=keys.TRAIN, group_id=str(round_), ttl=timeout) for node in nodes]
    ids = list(grid.push_messages(messages))
    sent = {mid: node for mid, node in zip(ids, nodes) if mid}
    events("round-start", round=round_, nodes=len(nodes), global_crc=zlib.crc32(blob), model_bytes=len(blob))
    replies = collect(grid, sent, timeout, lambda node, reply: events("reply", round=round_, node=node,
                                                                      error=reply.has_error()))
    updates, accepted, skipped = [], [], []
    seen: set[int] = set()
    for node in nodes:
        reply = replies.get(node)
        try:
            if reply is None:
                raise AggregationError("no reply" + (" (not sent)" if node not in sent.values() else
                                                     f" within the round's {timeout:g} s"))
            update, record = accept(reply, global_model, round_, seen, timeout)
        except (AggregationError, ModelError) as e:
            skipped.append({"node": node, "reason": str(e)})
            continue
        seen.add(record["board"])
        updates.append(update)
        accepted.append({**record, "node": node})
    merged = fedavg(global_model, updates) if updates else global_model
    round_dir = out_dir / f"round-{round_}"
    round_dir.mkdir(parents=True, exist_ok=True)
    merged_blob = to_blob(merged)
    (round_dir / "global.elm").write_bytes(merged_blob)
    x_test, y_test = test_set
    for update, record in zip(updates, accepted):
        (round_dir / f"board-{record['board']}.elm").write_bytes(to_blob(update.model))
        record["global_test_accuracy"] = accuracy(update.model, x_test, y_test)
    events("round", round=round_, accuracy=accuracy(merged, x_test, y_test), global_crc=zlib.crc32(merged_blob),
           sent_bytes=len(blob) * len(sent), received_bytes=sum(r["model_bytes"] for r in accepted),
           boards=sorted(accepted, key=lambda r: r["board"]), skipped=skipped)
    return merged


@app.main()
def main(grid: Grid, context: Context) -> None:
    rc = context.run_config
    out_dir = Path(str(rc["out-dir"]))
    events = Events(out_dir)
    try:
        model = check_blob(Path(str(rc["model"])).read_bytes())
        data = datasets.load(str(rc["data"]))
        test_set = global_test(data, str(rc["partition"]), int(rc["boards"]), int(rc["seed"]))
        nodes = wait_for_nodes(grid, int(rc["boards"]), float(rc["join-timeout"]))
        events("start", nodes=len(nodes), test_samples=len(test_set[1]),
               accuracy=accuracy(model, *test_set), global_crc=zlib.crc32(to_blob(model)))
        for round_ in range(int(rc["rounds"])):
            model = run_round(grid, context, model, round_, events, out_dir, test_set)
        events("done", global_crc=zlib.crc32(to_blob(model)))
    except Exception as e:
        events("failed", error=f"{type(e).__name__}: {e}", traceback=traceback.format_exc())
        raise

