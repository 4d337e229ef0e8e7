"""docs/cli.md's flag tables are the CLI's own flags (edgemtl.cli.reference renders them): the page cannot
drift from the commands again (issue 24: it claimed every flag and lacked --loss, --frame-size, ...)."""

from __future__ import annotations

import re

import click
import pytest

from edgemtl.cli import main
from edgemtl.cli.reference import DOC, REGENERATE, commands, regenerate, render


def test_docs_cli_md_lists_every_flag_of_every_command():
    text = DOC.read_text()
    assert regenerate(text) == text, f"docs/cli.md's flag tables differ from the CLI: run `{REGENERATE}`"
    names = [name for name, _ in commands()]
    assert {"train", "eval", "export", "camera", "bench", "data import", "data show"} <= set(names)
    # the flags the page lacked when it was written by hand
    for flag in ("`--loss` TASK=NAME", "`--class-weights`", "`pcgrad`", "`cagrad`", "`--frame-size`",
                 "`--overlay-output`", "`--format`"):  # fmt: skip
        assert flag in text, flag


def test_a_flag_added_to_the_cli_makes_the_page_stale(monkeypatch):
    text = DOC.read_text()
    train = main.commands["train"]
    monkeypatch.setattr(train, "params", [*train.params, click.Option(["--max-detections"], help="New.")])
    assert "`--max-detections`" in render("train", train)
    assert regenerate(text) != text


def test_a_command_without_a_table_is_named(monkeypatch):
    monkeypatch.setitem(main.commands, "track", click.Command("track", callback=lambda: None))
    with pytest.raises(SystemExit, match="no '<!-- flags: NAME -->' table for: track"):
        regenerate(DOC.read_text())


def test_the_demo_time_is_given_once_dated_in_the_readme():
    """docs/cli.md gave the demo 1 min 55 s where the README said 6 min: one dated figure, linked."""
    assert not re.search(r"\d+ min( \d+ s)?", DOC.read_text())
    readme = (DOC.parents[1] / "README.md").read_text()
    assert len(re.findall(r"`edgemtl demo`[^|]*\d+ min", readme)) == 1
