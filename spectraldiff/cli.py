"""Command line: ``python -m spectraldiff <command> ...``.

Each command lives in its own module, which provides ``add_arguments(parser)`` and ``run(args)``;
this file only lists them, so a command is imported when it is listed, not wired by hand.

A user error (a bad setting, a missing or corrupt file, a full disk) prints one line,
``python -m spectraldiff <command>: error: ...``, and exits with code 2
(:func:`spectraldiff.cli_errors.run_command`); ``--debug`` shows its traceback instead.
"""

from __future__ import annotations

import argparse
import importlib
import sys

from .cli_errors import ArgumentParser, run_command

# command name -> (module, one-line help)
COMMANDS = {
    "demo": ("spectraldiff.demo", "train a small eigenvalue diffusion on synthetic graphs and report it"),
    "generate": ("spectraldiff.generation.cli", "train a graph generator and evaluate it with MMD"),
    "bench-eigh": ("spectraldiff.eigh.bench.cli", "benchmark eigendecomposition backends"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(prog="python -m spectraldiff",
                            description="spectral graph diffusion: a demo, graph generation, and an "
                                        "eigendecomposition benchmark")
    parser.add_argument("--debug", action="store_true",
                        help="show the traceback of a user error instead of one line")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        module = importlib.import_module(module_name)
        sub = commands.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(sub)
        # Also accepted after the command; SUPPRESS keeps the sub-parser from resetting it.
        sub.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        sub.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    return run_command(f"{parser.prog} {args.command}", lambda: args._run(args), debug=args.debug)


if __name__ == "__main__":
    sys.exit(main())
