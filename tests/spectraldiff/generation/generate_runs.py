"""Helpers shared by the `generate` command tests (the fixtures are in conftest.py)."""

from spectraldiff.cli import main


def run_generate(*flags):
    """`spectraldiff generate` with 4 sampling steps and no progress bars; returns the exit code."""
    return main(["generate", "--no-progress", "--steps", "4", *flags])


def weights(module):
    """A copy of `module`'s state dict, to compare after more training."""
    return {k: v.clone() for k, v in module.state_dict().items()}
