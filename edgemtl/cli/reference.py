"""docs/cli.md's flag tables, rendered from the click commands themselves, so the page lists every flag there is.

Each command's table sits between two markers in docs/cli.md, `<!-- flags: train -->` and `<!-- /flags -->`
(`data import` for a subcommand); the prose around them is written by hand. Rewrite the tables after a flag
changes with

    python -m edgemtl.cli.reference            # rewrites docs/cli.md in place
    python -m edgemtl.cli.reference --check    # exit 1 when it is stale (what tests/cli/test_reference.py asks)
"""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from pathlib import Path

import click

DOC = Path(__file__).parents[2] / "docs" / "cli.md"
REGENERATE = "python -m edgemtl.cli.reference"
_SECTION = re.compile(r"(<!-- flags: (?P<name>[\w ]+) -->\n)(?P<body>.*?)(<!-- /flags -->)", re.DOTALL)


def commands(group: click.Group | None = None, prefix: str = "") -> Iterator[tuple[str, click.Command]]:
    """Every command a user can run, by its name after `edgemtl` ("train", "data import"), in order."""
    if group is None:
        from edgemtl.cli import main

        group = main
    for name, command in group.commands.items():
        if command.hidden:
            continue
        if isinstance(command, click.Group):
            yield from commands(command, f"{prefix}{name} ")
        else:
            yield f"{prefix}{name}", command


def _cell(text: str) -> str:
    """One table cell: one line, pipes escaped."""
    return " ".join(text.split()).replace("|", "\\|")


def _flag(option: click.Option) -> str:
    names = ", ".join(f"`{name}`" for name in option.opts)
    if option.secondary_opts:  # --progress/--no-progress
        return f"`{'/'.join([*option.opts, *option.secondary_opts])}`"
    return f"{names} {option.metavar}" if option.metavar else names


def _default(option: click.Option, context: click.Context) -> str:
    if isinstance(option.show_default, str):
        return option.show_default
    if option.required:
        return "(required)"
    default = option.get_default(context, call=False)
    if type(default).__name__ == "Sentinel":  # click's UNSET: no default (a required flag)
        default = None
    if option.is_flag and option.secondary_opts:
        return "" if default is None else ("on" if default else "off")
    if option.multiple:
        return ", ".join(f"`{value}`" for value in default or ())
    if default is None or default is False or option.is_flag or callable(default):
        return ""
    return f"`{default}`" if default != "" else '`""`'


def _help(option: click.Option) -> str:
    parts = [option.help or ""]
    if isinstance(option.type, click.Choice):
        parts.append("One of " + ", ".join(f"`{choice}`" for choice in option.type.choices) + ".")
    if option.multiple and "repeat" not in (option.help or "").lower():
        parts.append("Repeatable.")
    return _cell(" ".join(part for part in parts if part))


def render(name: str, command: click.Command) -> str:
    """The usage line and the flag table of one command, as docs/cli.md shows them."""
    if hasattr(command, "fill_defaults"):  # train reads its defaults from its config when it runs
        command.fill_defaults()
    context = click.Context(command, info_name=f"edgemtl {name}")
    usage = " ".join(command.collect_usage_pieces(context))
    rows = [
        f"| {_flag(param)} | {_default(param, context)} | {_help(param)} |"
        for param in command.get_params(context)
        if isinstance(param, click.Option) and not param.hidden and param is not command.get_help_option(context)
    ]
    table = ["| flag | default | |", "|---|---|---|", *rows] if rows else ["No flags besides `-h`, `--help`."]
    return "\n".join([f"`edgemtl {name} {usage}`", "", *table]) + "\n"


def regenerate(text: str) -> str:
    """docs/cli.md with every marked table rendered afresh; a command without a table is an error."""
    known = dict(commands())
    missing = [name for name in known if f"<!-- flags: {name} -->" not in text]
    if missing:
        raise SystemExit(f"docs/cli.md has no '<!-- flags: NAME -->' table for: {', '.join(missing)}")

    def fill(match: re.Match) -> str:
        name = match["name"]
        if name not in known:
            raise SystemExit(f"docs/cli.md has a flag table for {name!r}, which is no edgemtl command")
        return f"{match[1]}{render(name, known[name])}{match[4]}"

    return _SECTION.sub(fill, text)


def main(argv: list[str]) -> int:
    text = DOC.read_text()
    fresh = regenerate(text)
    if "--check" in argv:
        if fresh != text:
            print(f"docs/cli.md's flag tables differ from the CLI: run `{REGENERATE}`", file=sys.stderr)
            return 1
        return 0
    DOC.write_text(fresh)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
