"""Every flag of every verb (the core's and the installed ones: boards, fleet) has a help text,
and `--help` shows each option's default."""
import argparse
import contextlib
import io

import pytest

from edgelearn.cli import build_parser
from edgelearn.cli_util import parsers_of

PARSER = build_parser()
VERBS = [p for p in parsers_of(PARSER) if p is not PARSER and not any(
    isinstance(a, argparse._SubParsersAction) for a in p._actions)]


def documented(parser) -> list[argparse.Action]:
    return [a for a in parser._actions if not isinstance(a, (argparse._HelpAction, argparse._VersionAction))]


@pytest.mark.parametrize("parser", VERBS, ids=[p.prog for p in VERBS])
def test_every_flag_has_help_and_its_default_shows(parser):
    silent = [a.option_strings[0] if a.option_strings else a.dest for a in documented(parser) if not a.help]
    assert not silent, f"{parser.prog}: no help for {silent}"
    text = parser.format_help()
    for a in documented(parser):
        if a.option_strings and a.default not in (None, False, argparse.SUPPRESS):
            assert str(a.default) in text, f"{parser.prog} --help does not show {a.option_strings[0]}'s default"


def test_the_board_and_fleet_verbs_are_there_too():
    progs = {p.prog for p in VERBS}
    assert {"edgelearn train", "edgelearn push", "edgelearn stream", "edgelearn board start"} <= progs
    with contextlib.redirect_stdout(io.StringIO()), pytest.raises(SystemExit):
        PARSER.parse_args(["train", "--help"])
