"""Command line: ``python -m spectraldiff <command> ...``.

Each command lives in its own module, which provides ``add_arguments(parser)`` and ``run(args)``;
this file only lists them, so a command is imported when it is listed, not wired by hand.
"""

from __future__ import annotations

import argparse
import importlib
import sys

# command name -> (module, one-line help)
COMMANDS = {
    "demo": ("spectraldiff.demo", "train a small eigenvalue diffusion on synthetic graphs and report it"),
    "generate": ("spectraldiff.generation.cli", "train a graph generator and evaluate it with MMD"),
    "bench-eigh": ("spectraldiff.eigh.bench.cli", "benchmark eigendecomposition backends"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m spectraldiff", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (module_name, help_text) in COMMANDS.items():
        module = importlib.import_module(module_name)
        sub = commands.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(sub)
        sub.set_defaults(_run=module.run)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return int(args._run(args) or 0)


if __name__ == "__main__":
    sys.exit(main())
