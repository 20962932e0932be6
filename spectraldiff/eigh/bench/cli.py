"""``python -m spectraldiff bench-eigh``: the arguments and the run that writes the report."""

from __future__ import annotations

import argparse
from pathlib import Path

from ...atomic import atomic_write_text
from ...cli_errors import check_output_dir
from .compare import compare_reports, load_report, render_comparison
from .harness import benchmark_eigh
from .report import write_report


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--sizes", default="8,16,32,64,128,256", help="comma-separated n (default: %(default)s)")
    parser.add_argument("--batches", default="1,64,1024,8192", help="comma-separated B (default: %(default)s)")
    parser.add_argument(
        "--backends",
        default="torch,jacobi,cupy,auto",
        help="comma-separated batched_eigh backends; raw torch.linalg.eigh is always timed as reference "
        "(default: %(default)s)",
    )
    parser.add_argument("--device", default="cpu", help="cpu or cuda (default: %(default)s)")
    parser.add_argument("--dtype", default="float32", help="float32, float64 or both comma-separated (default: %(default)s)")
    parser.add_argument("--out", default="runs/eigh_bench", help="output directory (default: %(default)s)")
    parser.add_argument("--repeats", type=int, default=5, help="timed calls per point, at least (default: %(default)s)")
    parser.add_argument(
        "--min-time",
        type=float,
        default=0.25,
        help="keep repeating cheap points until this many seconds were timed, at most 2000 calls "
        "(default: %(default)s)",
    )
    parser.add_argument("--warmup", type=int, default=1, help="untimed calls per point first, ≥ 1 (default: %(default)s)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random graphs (default: %(default)s)")
    parser.add_argument(
        "--memory-budget-gb",
        type=float,
        default=None,
        help="working-memory budget per call; larger points run in chunks "
        "(default: a quarter of available RAM, capped at 8, on CPU; half the free GPU memory on CUDA)",
    )
    parser.add_argument(
        "--max-seconds",
        type=float,
        default=10.0,
        help="skip a point predicted to take longer than this per call (default: %(default)s)",
    )
    parser.add_argument(
        "--save-crossover",
        action="store_true",
        help="save the fastest backend per grid point for backend='auto' (in $SPECTRALDIFF_CACHE_DIR "
        "or ~/.cache/spectraldiff)",
    )
    parser.add_argument("--no-progress", action="store_true", help="no progress bar")
    parser.add_argument(
        "--compare",
        nargs="+",
        metavar="JSON",
        default=None,
        help="OLD.json: run, then compare every cell with that earlier eigh_bench.json (also written to "
        "OUT/eigh_compare.md); OLD.json NEW.json: compare the two files without running",
    )


def run(args: argparse.Namespace) -> int:
    compare = args.compare or []
    if len(compare) > 2:
        raise ValueError(f"--compare takes OLD.json or OLD.json NEW.json, got {len(compare)} files")
    # Read the files first: a bad one should fail before minutes of benchmarking.
    reports = [load_report(path) for path in compare]
    if len(reports) == 2:
        print(render_comparison(compare_reports(*reports), *reports, compare[0], compare[1]), end="")
        return 0
    check_output_dir(args.out)
    report = benchmark_eigh(
        sizes=_int_list(args.sizes, "--sizes"),
        batches=_int_list(args.batches, "--batches"),
        backends=[b.strip() for b in args.backends.split(",") if b.strip()],
        device=args.device,
        dtypes=[d.strip() for d in args.dtype.split(",") if d.strip()],
        repeats=args.repeats,
        min_time=args.min_time,
        warmup=args.warmup,
        seed=args.seed,
        memory_budget_bytes=None if args.memory_budget_gb is None else int(args.memory_budget_gb * 2**30),
        max_seconds=args.max_seconds,
        save_crossover_table=args.save_crossover,
        progress=not args.no_progress,
        command=_command_line(args),
    )
    files = write_report(report, Path(args.out))
    print(Path(files["md"]).read_text(encoding="utf-8"))
    if reports:
        text = render_comparison(compare_reports(reports[0], report), reports[0], report, compare[0], files["json"])
        compare_path = Path(args.out) / "eigh_compare.md"
        atomic_write_text(text, compare_path)
        files["compare"] = str(compare_path)
        print(text)
    for kind, path in files.items():
        print(f"wrote {kind}: {path}")
    return 0


def _command_line(args: argparse.Namespace) -> str:
    parts = [
        "python -m spectraldiff bench-eigh",
        f"--sizes {args.sizes} --batches {args.batches} --backends {args.backends}",
        f"--device {args.device} --dtype {args.dtype} --out {args.out}",
        f"--repeats {args.repeats} --min-time {args.min_time:g} --warmup {args.warmup} --seed {args.seed}",
        f"--max-seconds {args.max_seconds:g}",
    ]
    if args.memory_budget_gb is not None:
        parts.append(f"--memory-budget-gb {args.memory_budget_gb:g}")
    if args.save_crossover:
        parts.append("--save-crossover")
    if args.compare:
        parts.append("--compare " + " ".join(args.compare))
    return " ".join(parts)


def _int_list(text: str, option: str) -> list[int]:
    try:
        values = [int(v) for v in text.split(",") if v.strip()]
    except ValueError as error:
        raise ValueError(f"{option} expects comma-separated integers, got {text!r}") from error
    return values
