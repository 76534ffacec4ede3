"""The pretrained folder's model card names the command that fine-tunes it: ``lrl finetune
finetune.model=THIS_FOLDER`` read the override as the job file (``lrl finetune`` takes CONFIG first)
and stopped on it."""

from __future__ import annotations

import argparse
import importlib
import re

from lrl.cli import COMMANDS
from lrl.evaluate.pretrain_card import LIMITS


def test_the_cards_finetune_command_parses_as_lrl_finetune_reads_it():
    (command,) = re.findall(r"`(lrl finetune [^`]*)`", LIMITS)
    parser = argparse.ArgumentParser(prog="lrl finetune")
    importlib.import_module(COMMANDS["finetune"][0]).add_arguments(parser)
    args = parser.parse_intermixed_args(command.split()[2:])  # as lrl.cli._main parses it
    assert "=" not in args.config, f"{command!r}: the job file slot holds an override ({args.config})"
    assert args.overrides == ["finetune.model=THIS_FOLDER"]
