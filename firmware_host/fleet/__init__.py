"""Fleets: federated on-device learning across many boards on Flower (docs/fleet.md), the
host side of many board links.

    runner        ``edgelearn fleet``: boards, the deployment, following the events, the report
    deploy        Flower's own processes (SuperLink, SuperNodes, ``flwr run``) on loopback
    server_app    the Flower ServerApp: rounds, refusals, aggregation, evaluation (imports flwr)
    client_app    the Flower ClientApp: one board over its serial link (imports flwr)
    records       the keys of their messages and of the SuperNodes' node config
    report        progress, summary, the host's check, the boards-alone baseline, the plot
    cli           the ``fleet`` verb (entry point group ``edgelearn.commands``)

The contract's side is in ``edgelearn.fleet``: the federated average (``aggregate``), the
boards' shares (``partition``) and the host's replay of a federation (``reference``); it
imports neither Flower nor firmware_host. Here only ``server_app`` and ``client_app`` import
Flower: they run inside the processes Flower starts, in an environment with
``edgelearn[fleet]`` installed (.venv-fleet in a checkout). Everything else, the runner
included, works without it, so the tests drive fleets from the project's main environment.
"""
