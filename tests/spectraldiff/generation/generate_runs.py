"""Helpers shared by the `generate` command tests (the fixtures are in conftest.py)."""

import json

from spectraldiff.cli import main


def run_generate(*flags):
    """`spectraldiff generate` with 4 sampling steps and no progress bars; returns the exit code."""
    return main(["generate", "--no-progress", "--steps", "4", *flags])


def weights(module):
    """A copy of `module`'s state dict, to compare after more training."""
    return {k: v.clone() for k, v in module.state_dict().items()}


def finish_cut_run(graphs_file, saved, out):
    """`generate --resume-from saved --out out` without epochs: finishes the training `saved` was cut in."""
    return run_generate("--graphs", str(graphs_file), "--resume-from", str(saved), "--out", str(out))


def read_metrics(*run_dirs):
    """The `metrics.json` of each run folder, in order."""
    return [json.loads((run / "metrics.json").read_text()) for run in run_dirs]
