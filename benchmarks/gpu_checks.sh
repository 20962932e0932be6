#!/usr/bin/env bash
# The GPU checks of docs/eigh.md in one call of at most 8 minutes (eigh grid, spectral sampling,
# a GSDNet-sized sampler), spectraldiff only: no DGL and no mer needed, any torch >= 2.2.
#
#   benchmarks/gpu_checks.sh [--dry-run] [--out DIR] [--budget-s S]
#
# --dry-run runs the same plan on the CPU at tiny sizes (seconds) and prints each command.
# Results: DIR/summary.{json,md} and one folder per part (default DIR: runs/gpu_checks).
# Python: $PYTHON, else python3. See benchmarks/gpu_checks.py and docs/eigh.md ("GPU").
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
cd "$here/.."
exec "${PYTHON:-python3}" benchmarks/gpu_checks.py "$@"
