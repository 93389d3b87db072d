"""Helpers every verb of the ``edgelearn`` command shares: the core's (edgelearn.cli) and
those other packages register through the ``edgelearn.commands`` entry points (the board
verbs, firmware_host.cli)."""
from __future__ import annotations

import argparse
import os
import re
import sys
from pathlib import Path

from .errors import ModelError


def int_in(lo: int, hi: int | None = None):
    """An argparse type: an integer in [lo, hi], with a message that says so."""
    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < lo or (hi is not None and value > hi):
            bound = f"between {lo} and {hi}" if hi is not None else f"at least {lo}"
            raise argparse.ArgumentTypeError(f"must be {bound}, got {value}")
        return value
    return parse


def emit(text: str) -> None:
    """Print a result; a reader that went away (``| head``) is not an error."""
    try:
        print(text)
        sys.stdout.flush()
    except BrokenPipeError:
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def check_writable(path: str | None, suffixes: tuple[str, ...], kind: str) -> None:
    """Refuse an output path before the work, not after it."""
    if path is None:
        return
    target = Path(path)
    if target.suffix not in suffixes:
        raise ModelError(f"unknown {kind} file suffix {target.suffix!r} in {path!r}: use {' or '.join(suffixes)}")
    if not target.parent.is_dir():
        raise ModelError(f"cannot write the {kind} file {path!r}: directory {str(target.parent)!r} does not exist")
    if target.is_dir():
        raise ModelError(f"cannot write the {kind} file {path!r}: it is a directory")


class DefaultsShown(argparse.HelpFormatter):
    """Every option's help ends with its default unless the text already says it."""

    def _get_help_string(self, action: argparse.Action) -> str:
        text = action.help or ""
        if (action.option_strings and action.default not in (None, False, argparse.SUPPRESS)
                and "%(default)" not in text and not re.search(r"default\W{1,3}" + re.escape(str(action.default)), text)):
            text += " (default: %(default)s)"
        return text


def parsers_of(parser: argparse.ArgumentParser):
    """``parser`` and every sub-command's parser under it, depth first."""
    yield parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub in action.choices.values():
                yield from parsers_of(sub)
