"""Flags generated from config dataclasses (agents/cli.py)."""

from __future__ import annotations

import argparse

from agents.cli import add_arguments, from_args
from agents.evaluation import EvalConfig


def parse(*argv: str) -> EvalConfig:
    parser = argparse.ArgumentParser()
    add_arguments(parser, EvalConfig)
    return from_args(EvalConfig, parser.parse_args(list(argv)))


def test_tuple_flags_split_commas_and_repeated_flags_accumulate():
    config = parse("--fidelity", "mnist:0.25:4", "--fidelity", "wine::30,digits::2")
    assert config.fidelity == ("mnist:0.25:4", "wine::30", "digits::2")
    assert parse("--seeds", "3,4").seeds == (3, 4)
    assert parse().seeds == (0, 1, 2, 3, 4)  # the default stays when the flag is absent
    assert parse("--seeds", "7").seeds == (7,)  # a given flag replaces the default
