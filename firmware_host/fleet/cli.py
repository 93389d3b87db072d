"""The ``fleet`` verb of the ``edgelearn`` command (docs/fleet.md):

    edgelearn fleet --boards N --rounds R --data D --partition iid|by-class|shifted
                    [--kind native|mps2-an386|mps2-an500] [--model M] [--epochs E] [--seed S]
                    [--out DIR] [--plot PNG] [--baseline] [--check] [--json]

It joins the command through the entry point group ``edgelearn.commands`` (setup.cfg:
``fleet = firmware_host.fleet.cli:add_commands``) and imports no Flower itself: it starts Flower's
processes, from this environment or ``--flower-bin``.
"""
from __future__ import annotations

import json

from edgelearn.cli_util import check_writable, emit, int_in
from edgelearn.fleet.partition import PARTITIONS

from ..cli import seconds
from .deploy import DeployError
from .runner import BOARD_KINDS, FleetConfig, FleetError, run_fleet, save_report

# what a fleet run raises beyond the ValueErrors (partitions, aggregation, datasets) edgelearn.cli prints anyway
ERRORS = (FleetError, DeployError)


def add_commands(sub) -> tuple[type[BaseException], ...]:
    f = sub.add_parser("fleet", help="federated on-device learning: N emulated boards, Flower's deployment on "
                                     "loopback, R rounds averaged in the numeric contract")
    f.add_argument("--boards", type=int_in(1, 256), default=3, help="boards (and SuperNodes) to start")
    f.add_argument("--rounds", type=int_in(1, 10000), default=2, help="federated rounds")
    f.add_argument("--data", default="digits", help="digits, mnist, or a directory of MNIST-style IDX files")
    f.add_argument("--partition", choices=PARTITIONS, default="iid",
                   help="iid: equal random shares; by-class: each board a few classes; shifted: each board's "
                        "images translated by its own offset")
    f.add_argument("--kind", choices=BOARD_KINDS, default="native",
                   help="native (the firmware as a host process) or QEMU mps2-an386 (Cortex-M4F) / mps2-an500 (M7)")
    f.add_argument("--model", help="a .json spec or .elm blob (default: the zoo's <data>-stop.json)")
    f.add_argument("--epochs", type=int_in(1, 1000), default=1, help="local epochs over a board's share per round")
    f.add_argument("--seed", type=int_in(0, 0xFFFFFFFF), default=0, help="the partition's shuffles")
    f.add_argument("--round-timeout", type=seconds, default=300.0,
                   help="seconds to wait for a round's replies; a board later than that is skipped for the round")
    f.add_argument("--join-timeout", type=seconds, default=120.0, help="seconds to wait for every SuperNode to join")
    f.add_argument("--rejoin-wait", type=seconds, default=10.0,
                   help="seconds each round waits for SuperNodes missing from the fleet (one back from a fault is "
                        "online again at its next heartbeat)")
    f.add_argument("--out", help="the run's directory (default: out/fleet-<time>): events, models, logs, report")
    f.add_argument("--plot", help="a PNG of the global accuracy per round, the boards' local accuracy and the "
                                  "bytes moved")
    f.add_argument("--baseline", action="store_true",
                   help="also train each board's share alone for as many epochs (host C runtime) and score it on "
                        "the same test set")
    f.add_argument("--check", action="store_true",
                   help="replay the federation on the host (C runtime, the same boards per round) and check every "
                        "round's aggregate bit for bit")
    f.add_argument("--flower-bin", metavar="DIR", help="the bin/ directory of an environment with edgelearn[fleet] "
                                                       "(default: this one)")
    f.add_argument("--json", action="store_true", help="print the rounds and the final scores as JSON")
    f.set_defaults(run=cmd_fleet)
    return ERRORS


def cmd_fleet(args) -> int:
    from . import report as fleet_report

    check_writable(args.plot, (".png",), "plot")
    cfg = FleetConfig(boards=args.boards, rounds=args.rounds, data=args.data, partition=args.partition,
                      kind=args.kind, model=args.model, epochs=args.epochs, seed=args.seed,
                      round_timeout=args.round_timeout, join_timeout=args.join_timeout,
                      rejoin_wait=args.rejoin_wait, out_dir=args.out,
                      flower_bin=args.flower_bin)
    display = None if args.json else fleet_report.Display(cfg)
    try:
        report = run_fleet(cfg, show=display)
    finally:
        if display:
            display.close()
    if args.check:
        report["check"] = fleet_report.check(report)
    if args.baseline:
        report["baseline"] = fleet_report.baseline(report)
    if args.plot:
        fleet_report.plot(report, args.plot)
        report["plot"] = args.plot
    save_report(report)
    emit(json.dumps(report, indent=2) if args.json else fleet_report.summary(report))
    return 0 if report.get("check", {}).get("bit_exact", True) else 1
