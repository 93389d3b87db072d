"""Ctrl-C for a command run as a child process (the tests of `edgelearn train` and `stream`)."""
import os
import signal
import subprocess
import sys


def start(argv: list[str], **popen) -> subprocess.Popen:
    """``python -m ...argv`` with stdout and stderr piped as text, ready to take SIGINT."""
    return subprocess.Popen([sys.executable, "-m", *argv], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, "PYTHONUNBUFFERED": "1", "PYTHONFAULTHANDLER": "1"},
                            # a run in the background inherits SIGINT ignored, and Python then never
                            # turns it into KeyboardInterrupt: give the child the terminal's default
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL), **popen)


def interrupt(proc: subprocess.Popen, timeout: float) -> tuple[str, str]:
    """SIGINT, then the child's stdout and stderr once it exits; a child still running after
    ``timeout`` seconds is aborted (its fault handler prints where it hangs) and fails the test."""
    proc.send_signal(signal.SIGINT)
    try:
        return proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.send_signal(signal.SIGABRT)
        _, stderr = proc.communicate()
        raise AssertionError(f"no exit {timeout} s after SIGINT:\n{stderr[-4000:]}") from None
