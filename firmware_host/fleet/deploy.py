"""Flower's own deployment processes on this machine, over loopback (docs/fleet.md, "The
deployment"): one SuperLink, one SuperNode per board, and ``flwr run``, which builds the
fleet's Flower app into a FAB and submits it to the SuperLink; the SuperLink then starts the
ServerApp and each SuperNode a ClientApp per message, all as Flower starts them in any
deployment.

    with Deployment(flower_bin(None), run_dir) as d:
        address = d.start_superlink()
        d.start_supernode(0, {"board": "fleet-0", "partition-id": 0, "num-partitions": 1})
        run = d.run_app(app_dir)              # a Process; its log is the ServerApp's log stream

Every process gets its own session, so stopping one stops what it started (SuperExec,
ClientApps); nothing outlives the deployment. Flower's telemetry and update check are off
(``FLWR_TELEMETRY_ENABLED=0``, ``FLWR_DISABLE_UPDATE_CHECK=1``) and the SuperLink installs no
app dependencies at run time: nothing leaves this machine. ``FLWR_HOME`` is the run's own
directory, so the user's ``~/.flwr`` is not touched.
"""
from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

FLOWER_COMMANDS = ("flower-superlink", "flower-supernode", "flwr")
QUIET = {"FLWR_TELEMETRY_ENABLED": "0", "FLWR_DISABLE_UPDATE_CHECK": "1"}
CONNECTION = "fleet"          # the SuperLink connection's name in FLWR_HOME/config.toml
APP_NAME = "edgelearn-fleet"  # the Flower app's directory and project name


class DeployError(RuntimeError):
    """A Flower process that is missing, would not start, or failed; the message says which."""


def flower_bin(given: str | None) -> Path:
    """The directory holding Flower's commands: ``given``, else this interpreter's own
    ``bin/``, else the one on PATH."""
    candidates = [Path(given)] if given else [Path(sys.executable).parent]
    if not given and shutil.which("flower-superlink"):
        candidates.append(Path(shutil.which("flower-superlink")).parent)
    for directory in candidates:
        if all((directory / c).exists() for c in FLOWER_COMMANDS):
            return directory
    where = given or f"{Path(sys.executable).parent} or on PATH"
    raise DeployError(f"Flower's commands ({', '.join(FLOWER_COMMANDS)}) are not in {where}: install the fleet "
                      "extra (pip install 'edgelearn[fleet]'; in a checkout, make fleet-setup builds .venv-fleet) "
                      "and run edgelearn from there, or name its bin/ directory with --flower-bin")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def toml_value(value) -> str:
    """A str, int, float or bool as TOML (JSON's string escapes are TOML's)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return json.dumps(str(value))


def toml_table(values: dict) -> str:
    return "".join(f"{key} = {toml_value(v)}\n" for key, v in values.items())


def write_app(app_dir: Path, config: dict) -> Path:
    """The fleet's Flower app: a pyproject.toml naming edgelearn's ServerApp and ClientApp
    and the run config ``config``. The components are imported from the installed edgelearn."""
    app_dir.mkdir(parents=True, exist_ok=True)
    (app_dir / "pyproject.toml").write_text(
        "[build-system]\nrequires = [\"setuptools>=64\"]\nbuild-backend = \"setuptools.build_meta\"\n\n"
        f"[project]\nname = \"{APP_NAME}\"\nversion = \"1.0.0\"\n"
        "description = \"edgelearn fleet: federated on-device learning across boards\"\n"
        "dependencies = [\"flwr>=1.42.0,<2\", \"edgelearn\"]\n\n"
        "[tool.flwr.app]\npublisher = \"edgelearn\"\n\n"
        "[tool.flwr.app.components]\nserverapp = \"firmware_host.fleet.server_app:app\"\n"
        "clientapp = \"firmware_host.fleet.client_app:app\"\n\n"
        "[tool.flwr.app.config]\n" + toml_table(config))
    return app_dir


class Process:
    """A Flower process in a session of its own, its output in ``log``, working in ``cwd`` (the
    run's directory: the ClientApps and the ServerApp inherit it)."""

    def __init__(self, cmd: list, log: Path, env: dict, what: str, cwd: Path):
        self.what, self.log = what, log
        with log.open("wb") as out:
            self.proc = subprocess.Popen([str(c) for c in cmd], stdin=subprocess.DEVNULL, stdout=out,
                                         stderr=subprocess.STDOUT, env=env, cwd=cwd, start_new_session=True)

    @property
    def alive(self) -> bool:
        return self.proc.poll() is None

    def output(self, tail: int = 4000) -> str:
        try:
            return self.log.read_text(errors="replace")[-tail:]
        except OSError:
            return ""

    def stop(self, grace: float = 5.0) -> None:
        """SIGTERM to its session, SIGKILL after ``grace`` seconds."""
        for sig, wait in ((signal.SIGTERM, grace), (signal.SIGKILL, 5.0)):
            if self.proc.poll() is not None:
                break
            try:
                os.killpg(self.proc.pid, sig)
            except ProcessLookupError:
                break
            try:
                self.proc.wait(wait)
            except subprocess.TimeoutExpired:
                pass
        try:                                 # the session may hold children that outlived it
            os.killpg(self.proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


class Deployment:
    """The Flower processes of one fleet run, logs in ``run_dir/logs``."""

    def __init__(self, bin_dir: Path, run_dir: Path, extra_env: dict | None = None):
        self.bin, self.run_dir = bin_dir, run_dir
        self.logs = run_dir / "logs"
        self.logs.mkdir(parents=True, exist_ok=True)
        home = run_dir / "flwr"
        home.mkdir(parents=True, exist_ok=True)
        self.env = {**os.environ, **QUIET, **(extra_env or {}), "FLWR_HOME": str(home),
                    "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"}
        self.superlink: Process | None = None
        self.address = ""
        self.supernodes: dict[int, Process] = {}
        self.app: Process | None = None

    def start_superlink(self, timeout: float = 60.0) -> str:
        port = free_port()
        self.superlink = Process([self.bin / "flower-superlink", "--insecure", "--host", "127.0.0.1", "--port", port,
                                  "--disable-runtime-dependency-installation"],
                                 self.logs / "superlink.log", self.env, "the SuperLink", self.run_dir)
        self.address = f"127.0.0.1:{port}"
        deadline = time.monotonic() + timeout
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                pass
            if not self.superlink.alive:
                raise DeployError(f"the SuperLink exited ({self.superlink.proc.returncode}):\n{self.superlink.output()}")
            if time.monotonic() > deadline:
                raise DeployError(f"the SuperLink did not listen on {self.address} within {timeout:.0f} s:\n"
                                  f"{self.superlink.output()}")
            time.sleep(0.1)
        (Path(self.env["FLWR_HOME"]) / "config.toml").write_text(
            f"[superlink]\ndefault = \"{CONNECTION}\"\n\n[superlink.{CONNECTION}]\n"
            f"address = \"{self.address}\"\ninsecure = true\n")
        return self.address

    def start_supernode(self, k: int, node_config: dict) -> Process:
        """SuperNode ``k`` with ``node_config`` (written as a TOML file it reads)."""
        config_file = self.run_dir / f"node-{k}.toml"
        config_file.write_text(toml_table(node_config))
        node = Process([self.bin / "flower-supernode", "--insecure", "--superlink", self.address,
                        "--port", free_port(), "--node-config", config_file],
                       self.logs / f"supernode-{k}.log", self.env, f"SuperNode {k}", self.run_dir)
        self.supernodes[k] = node
        return node

    def run_app(self, app_dir: Path) -> Process:
        """``flwr run APP fleet --stream``: submits the run; exits when the run ends."""
        self.app = Process([self.bin / "flwr", "run", app_dir, CONNECTION, "--stream"],
                           self.logs / "run.log", self.env, "flwr run", self.run_dir)
        return self.app

    def stop(self) -> None:
        for proc in [self.app, *self.supernodes.values(), self.superlink]:
            if proc is not None:
                proc.stop()
        self.supernodes.clear()

    def __enter__(self):
        return self

    def __exit__(self, *exc) -> None:
        self.stop()
