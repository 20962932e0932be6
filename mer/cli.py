"""Command line: ``python -m mer train|evaluate|benchmark|report|list`` (also the ``mer`` console script).

A thin layer over the Python API (:func:`mer.train`, :meth:`mer.TrainedModel.evaluate`,
:func:`mer.run_benchmark`); every option maps to a :class:`~mer.config.RunConfig` field, and
``--config FILE`` (JSON/YAML) supplies the rest. Without ``--data`` the built-in synthetic set is used.

:data:`COMMANDS` lists the commands: each is a pair of functions, one that adds its options to a
parser and one that runs it. A user error (a bad setting or name, a missing, corrupt or refused file,
an ``--out`` that is a file, a full disk) prints one line, ``mer <command>: error: ...``, and exits
with code 2 (:func:`spectraldiff.cli_errors.run_command`); ``mer --debug`` shows its traceback instead.
Other exceptions are bugs and keep their traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import pathlib
from typing import Callable, Sequence

import yaml

from spectraldiff.atomic import atomic_write_text, jsonable
from spectraldiff.cli_errors import ArgumentParser, check_output_dir, run_command

from mer.data import available_datasets
from mer.data.protocol import MissingProtocol, parse_mixture, protocol_from_options
from mer.data.source import DataConfig, load_data

__all__ = ["main", "build_parser", "load_data", "COMMANDS"]


def _items(text: str, sep: str = ",") -> list[str]:
    # An empty item ("0.1,,0.2", a trailing comma) is a typo, never a request to skip.
    items = [v.strip() for v in text.split(sep)]
    if not all(items):
        raise argparse.ArgumentTypeError(f"empty item in {text!r}; separate the items with single {sep!r}")
    return items


def _floats(text: str) -> list[float]:
    try:
        return [float(v) for v in _items(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from None


def _ints(text: str) -> list[int]:
    try:
        return [int(v) for v in _items(text)]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected comma-separated integers, got {text!r}") from None


def _names(text: str) -> list[str]:
    return _items(text)


def _patterns(text: str) -> list[tuple[str, ...]]:
    return [tuple(_names(p)) for p in _items(text, ";")]


def _mixture(text: str) -> list[float | tuple[str, ...]]:
    try:
        return parse_mixture(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _add_data_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("data (default: the built-in synthetic set)")
    g.add_argument("--data", metavar="PATH",
                   help="an MMSA pickle, or a GCNet label pickle with --feature-dirs")
    g.add_argument("--data-format", choices=["mmsa", "gcnet"], default=None,
                   help="format of --data (default: gcnet when --feature-dirs is given, else mmsa)")
    g.add_argument("--feature-dirs", metavar="M=DIR,...", help="GCNet: per-modality .npy directories")
    g.add_argument("--synthetic-conversations", type=int, default=None, metavar="N",
                   help="size of the synthetic set (default 300)")
    g.add_argument("--data-seed", type=int, default=None, help="seed of the synthetic set (default 0)")
    g.add_argument("--task", choices=["regression", "classification"], default=None,
                   help="classification: the 7-class view of regression labels")
    g.add_argument("--trust-pickle", action="store_true",
                   help="read the --data pickle with plain pickle instead of the restricted unpickler; "
                        "only for files you trust: lets the file run code")


def _data_config(args, base: DataConfig) -> DataConfig:
    if args.data:
        if not os.path.isfile(args.data):
            what = "is a folder" if os.path.isdir(args.data) else "does not exist"
            raise ValueError(f"--data {args.data} {what}; give the path of an MMSA pickle or a GCNet "
                             "label pickle")
        fmt = args.data_format or ("gcnet" if args.feature_dirs else "mmsa")
        if fmt == "gcnet":
            if not args.feature_dirs:
                raise ValueError("--data-format gcnet needs --feature-dirs t=DIR,a=DIR,v=DIR")
            dirs = {}
            for item in _names(args.feature_dirs):
                if "=" not in item:
                    raise ValueError(f"--feature-dirs entries must be MODALITY=DIR, got {item!r}")
                k, v = item.split("=", 1)
                if not os.path.isdir(v):
                    raise ValueError(f"--feature-dirs {k}={v}: {v} is not a folder; give the folder of "
                                     f"modality {k!r}'s .npy files")
                dirs[k] = v
            data = DataConfig("gcnet", {"label_pickle": args.data, "feature_dirs": dirs})
        else:
            data = DataConfig("mmsa", {"path": args.data})
    else:
        data = DataConfig(base.source, dict(base.options), base.task)
        if data.source == "synthetic":
            if args.synthetic_conversations is not None:
                data.options["num_conversations"] = args.synthetic_conversations
            if args.data_seed is not None:
                data.options["seed"] = args.data_seed
    if args.task is not None:
        data.task = args.task
    return data


def _add_protocol_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("missing-modality protocol")
    g.add_argument("--protocol", choices=["none", "random", "fixed", "mixed"], default=None)
    g.add_argument("--missing-rate", type=float, default=None, help="random protocol: MR")
    g.add_argument("--pattern", type=_names, default=None, metavar="M,M",
                   help="fixed protocol: the available modalities, e.g. t,a")
    g.add_argument("--mixture", type=_mixture, default=None, metavar="0.3;t,a;...",
                   help="mixed protocol: ';'-separated conditions, each a missing rate or an "
                        "availability set; every conversation draws one uniformly")


def _add_run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="FILE", help="a RunConfig as JSON or YAML")
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--device", default=None, help="cpu (default), cuda or cuda:K")
    p.add_argument("--progress", action="store_true", help="tqdm progress bars")
    p.add_argument("--eval-samples", type=int, default=None, metavar="K",
                   help="seeded draws averaged where the recoverer samples (the diffusion methods; "
                        "others run once) (default 1: train.eval_samples)")


def _protocol(args, base: MissingProtocol) -> MissingProtocol:
    return protocol_from_options(base, args.protocol, args.missing_rate, args.pattern, args.mixture)


# ------------------------------------------------------------------------------- commands
def _add_train(p: argparse.ArgumentParser) -> None:
    p.add_argument("--recoverer", default=None, help="a registered recoverer (see `mer list`)")
    p.add_argument("--seed", type=int, default=None)
    p.add_argument("--out", required=True, metavar="DIR",
                   help="run directory: config.json, last.pt, best.pt, metrics.json")
    p.add_argument("--no-resume", action="store_true", help="start over even if DIR/last.pt exists")
    _add_run_options(p)
    _add_protocol_options(p)
    _add_data_options(p)


def _run_train(args) -> int:
    from mer.training import resolve_config, train

    check_output_dir(args.out)
    cfg = resolve_config(args.config, recoverer=args.recoverer, seed=args.seed, device=args.device,
                         epochs=args.epochs)
    cfg.data = _data_config(args, cfg.data)
    cfg.protocol = _protocol(args, cfg.protocol)
    cfg.train.progress = cfg.train.progress or args.progress
    if args.eval_samples is not None:
        cfg.train.eval_samples = args.eval_samples
    dataset = load_data(cfg.data, trust_pickle=args.trust_pickle)
    trained = train(dataset, config=cfg, out_dir=args.out, resume=not args.no_resume)
    metrics = trained.evaluate(dataset, "test") if dataset.splits["test"] else {}
    print(json.dumps({"out": str(args.out), "best_epoch": trained.best_epoch, "test": metrics},
                     indent=2, default=str))
    return 0


def _add_evaluate(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", help="a best.pt file or a run directory")
    p.add_argument("--split", default="test", choices=["train", "valid", "test"])
    p.add_argument("--mask-seed", type=int, default=None, help="seed of the masks (default: the run's)")
    p.add_argument("--eval-samples", type=int, default=None, metavar="K",
                   help="seeded draws averaged where the recoverer samples (the diffusion methods; "
                        "others run once) (default: the run's train.eval_samples)")
    p.add_argument("--device", default=None)
    p.add_argument("--out", metavar="FILE", help="also write the metrics as JSON")
    _add_protocol_options(p)
    _add_data_options(p)


def _run_evaluate(args) -> int:
    from mer.training import TrainedModel

    if args.out and os.path.isdir(args.out):
        raise ValueError(f"--out {args.out} is a folder; give the path of the JSON file to write")
    trained = TrainedModel.load(args.checkpoint, device=args.device)
    cfg = trained.config
    data = _data_config(args, cfg.data)
    protocol = _protocol(args, cfg.protocol)
    if args.mask_seed is not None:
        protocol.seed = args.mask_seed
    elif protocol.seed is None:
        protocol.seed = cfg.mask_seed
    dataset = load_data(data, trust_pickle=args.trust_pickle)
    metrics = trained.evaluate(dataset, args.split, protocol, samples=args.eval_samples)
    record = {"checkpoint": str(args.checkpoint), "split": args.split,
              "condition": protocol.condition, "mask_seed": protocol.seed, "metrics": metrics}
    text = json.dumps(jsonable(record), indent=2)
    if args.out:
        atomic_write_text(text + "\n", args.out)
    print(text)
    return 0


def _add_benchmark(p: argparse.ArgumentParser) -> None:
    p.add_argument("--recoverers", type=_names, default=None, metavar="A,B",
                   help="default: zero,mean,autoencoder,imder,gsdnet")
    p.add_argument("--protocol", choices=["random", "fixed", "both"], default="random",
                   help="conditions: missing rates, availability sets, or both (a table section "
                        "each; default random)")
    p.add_argument("--missing-rates", type=_floats, default=None, metavar="R,R",
                   help="random protocol (default 0.0,0.1,...,0.6 and (M-1)/M)")
    p.add_argument("--patterns", type=_patterns, default=None, metavar="t;a;t,a",
                   help="fixed protocol: ';'-separated availability sets (default: all 2^M-1)")
    p.add_argument("--training", choices=["per-condition", "shared"], default="per-condition",
                   help="per-condition: a model per condition, seed and recoverer (default); shared: "
                        "one model per seed and recoverer trained on the uniform mixture of all "
                        "conditions, then tested under each")
    p.add_argument("--seeds", type=_ints, default=None, metavar="S,S", help="default 1111,1112,1113")
    p.add_argument("--out", required=True, metavar="DIR")
    p.add_argument("--no-resume", action="store_true", help="rerun runs already in DIR/results.json")
    _add_run_options(p)
    _add_data_options(p)


def _run_benchmark(args) -> int:
    # Looked up on the package at call time, so `mer --help` stays fast and tests can stand in.
    import mer.benchmark as benchmark
    from mer.training import resolve_config

    check_output_dir(args.out)
    base = resolve_config(args.config, device=args.device, epochs=args.epochs)
    if args.eval_samples is not None:
        base.train.eval_samples = args.eval_samples
    base.data = _data_config(args, base.data)
    dataset = load_data(base.data, trust_pickle=args.trust_pickle)
    rows = benchmark.run_benchmark(
        dataset,
        recoverers=args.recoverers or list(benchmark.DEFAULT_RECOVERERS),
        protocol=args.protocol,
        missing_rates=args.missing_rates,
        patterns=args.patterns,
        training=args.training.replace("-", "_"),
        seeds=args.seeds or list(benchmark.DEFAULT_SEEDS),
        config=base,
        out_dir=args.out,
        resume=not args.no_resume,
        progress=args.progress,
    )
    print((pathlib.Path(args.out) / "table.md").read_text(encoding="utf8"))
    print(f"{len(rows)} results (condition × seed × recoverer) in {args.out}/results.json, "
          f"figure in {args.out}/missing_rate.png")
    return 0


def _add_report(p: argparse.ArgumentParser) -> None:
    p.add_argument("results", nargs="+", metavar="RESULTS",
                   help="results.json files or benchmark output directories")
    p.add_argument("--out", required=True, metavar="DIR")


def _run_report(args) -> int:
    from mer.benchmark import merge_results, write_report

    check_output_dir(args.out)
    rows = merge_results(args.results)
    if not rows:
        raise ValueError("the given results hold no rows")
    task = "regression" if "acc2_non0" in rows[0]["metrics"] else "classification"
    write_report(rows, args.out, task)
    print((pathlib.Path(args.out) / "table.md").read_text(encoding="utf8"))
    return 0


def _add_list(p: argparse.ArgumentParser) -> None:
    pass


def _run_list(args) -> int:
    from mer.recoverers import available_recoverers

    print("recoverers:", ", ".join(available_recoverers()))
    print("data sources:", ", ".join(available_datasets()))
    return 0


Command = tuple[Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int], str]

#: command name → (adds its options, runs it, one-line help), in the order ``mer --help`` lists them.
COMMANDS: dict[str, Command] = {
    "train": (_add_train, _run_train, "train one recoverer under one protocol setting"),
    "evaluate": (_add_evaluate, _run_evaluate, "evaluate a checkpoint under a protocol setting"),
    "benchmark": (_add_benchmark, _run_benchmark,
                  "recoverers × conditions × seeds; writes results, table, figure"),
    "report": (_add_report, _run_report,
               "merge benchmark results into one results.json, table and figure"),
    "list": (_add_list, _run_list, "list registered recoverers and data sources"),
}


def build_parser() -> argparse.ArgumentParser:
    parser = ArgumentParser(
        prog="mer", description="Multimodal emotion recognition with missing modalities."
    )
    parser.add_argument("--debug", action="store_true",
                        help="show the traceback of a user error instead of one line")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (add_arguments, run, help_text) in COMMANDS.items():
        p = sub.add_parser(name, help=help_text)
        add_arguments(p)
        # Also accepted after the command; SUPPRESS keeps the sub-parser from resetting it.
        p.add_argument("--debug", action="store_true", default=argparse.SUPPRESS, help=argparse.SUPPRESS)
        p.set_defaults(_run=run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return run_command(f"mer {args.command}", lambda: args._run(args), debug=args.debug,
                       user_errors=(yaml.YAMLError,))
