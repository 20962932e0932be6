"""Command line: ``python -m mer train|evaluate|predict|benchmark|report|list|plot`` (also the ``mer`` console script).

A thin layer over the Python API (:func:`mer.train`, :meth:`mer.TrainedModel.evaluate`,
:func:`mer.run_benchmark`); every option maps to a :class:`~mer.config.RunConfig` field, and
``--config FILE`` (JSON/YAML) supplies the rest. Without ``--data`` the built-in synthetic set is used;
``--data NAME`` picks a registered source that reads no file (``synthetic``, ``gaussian``: see
``mer list``), ``--data PATH`` a feature pickle.

``--set KEY=VALUE ...`` changes any :class:`~mer.config.RunConfig` setting by its dotted name
(:meth:`~mer.config.RunConfig.with_settings`, checked like a config file). Precedence, lowest first:
the defaults, ``--config FILE``, ``--set``, then the dedicated flags (``--epochs``, ``--seed``,
``--protocol``, ``--data`` ...). Everything a command prints or writes as JSON follows the files'
rule: NaN and infinity become ``null`` (:func:`spectraldiff.atomic.json_text`).

:data:`COMMANDS` lists the commands: each is a pair of functions, one that adds its options to a
parser and one that runs it. A user error (a bad setting or name, a missing, corrupt or refused file,
an ``--out`` that is a file, a full disk) prints one line, ``mer <command>: error: ...``, and exits
with code 2 (:func:`spectraldiff.cli_errors.run_command`); ``mer --debug`` shows its traceback instead.
Other exceptions are bugs and keep their traceback.
"""

from __future__ import annotations

import argparse
import csv
import inspect
import io
import json
import os
import pathlib
import re
import sys
from typing import Callable, Sequence

import yaml

from spectraldiff.atomic import atomic_write_text, json_text
from spectraldiff.cli_errors import ArgumentParser, check_output_dir, run_command

from mer.data import DATASETS, available_datasets
from mer.config import RunConfig, parse_setting
from mer.data.protocol import (
    CONDITION_SETS,
    PROTOCOL_KINDS,
    MissingProtocol,
    parse_mixture,
    protocol_from_options,
)
from mer.data.source import IN_MEMORY, DataConfig, load_data

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


def _split_outside_brackets(text: str) -> list[str]:
    """``text`` cut at the commas that no ``[...]`` encloses; unbalanced brackets and empty items are
    refused, as by :func:`_items`."""
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):
        depth += {"[": 1, "]": -1}.get(char, 0)
        if depth < 0:
            break
        if char == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    if depth != 0:
        raise argparse.ArgumentTypeError(f"unbalanced brackets in {text!r}")
    parts.append(text[start:])
    if not all(part.strip() for part in parts):
        raise argparse.ArgumentTypeError(f"empty item in {text!r}; separate the items with single ','")
    return parts


_RECOVERER_SPEC = re.compile(r"([A-Za-z0-9_.-]+)(?:\[(.*)\])?", re.DOTALL)


def _recoverer_specs(text: str) -> list[tuple[str, dict]]:
    """``zero,rohydr[stages=one,lr=1e-3]`` → ``[("zero", {}), ("rohydr", {"stages": "one", "lr": 0.001})]``:
    each recoverer with the ``recoverer_kwargs`` in its brackets, values read as by ``--set``."""
    specs = []
    for item in _split_outside_brackets(text):
        match = _RECOVERER_SPEC.fullmatch(item.strip())
        if not match:
            raise argparse.ArgumentTypeError(f"{item.strip()!r} in {text!r}: expected NAME or NAME[key=value,...]")
        name, inside = match.groups()
        kwargs = {}
        for setting in _split_outside_brackets(inside) if inside is not None else []:
            try:
                key, value = parse_setting(setting)
            except ValueError:
                raise argparse.ArgumentTypeError(
                    f"{item.strip()!r}: expected key=value inside the brackets, got {setting.strip()!r}") from None
            if key in kwargs:
                raise argparse.ArgumentTypeError(f"{item.strip()!r}: {key!r} is given twice")
            kwargs[key] = value
        specs.append((name, kwargs))
    names = [name for name, _ in specs]
    repeated = sorted({name for name in names if names.count(name) > 1})
    if repeated:
        raise argparse.ArgumentTypeError(
            f"{', '.join(repeated)} given twice in {text!r}: one run holds one setting of each recoverer; run "
            "the variant into another --out and merge the two with `mer report`")
    return specs


def _patterns(text: str) -> list[tuple[str, ...]]:
    return [tuple(_names(p)) for p in _items(text, ";")]


def _mixture(text: str) -> list[float | tuple[str, ...]]:
    try:
        return parse_mixture(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def _add_data_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("data (default: the built-in synthetic set)")
    g.add_argument("--data", metavar="NAME|PATH",
                   help="a registered source that reads no file (synthetic, gaussian: the yardstick "
                        "with a known optimum; see `mer list`), an MMSA pickle, or a GCNet label "
                        "pickle with --feature-dirs")
    g.add_argument("--data-format", choices=["mmsa", "gcnet"], default=None,
                   help="format of --data (default: gcnet when --feature-dirs is given, else mmsa)")
    g.add_argument("--feature-dirs", metavar="M=DIR,...", help="GCNet: per-modality .npy directories")
    g.add_argument("--sequences", action="store_true",
                   help="MMSA: keep each clip's per-step sequences (for --set model.fusion=mult)")
    g.add_argument("--per-clip", action="store_true",
                   help="MMSA: every clip its own sample, no cross-clip context (the papers' view)")
    g.add_argument("--synthetic-conversations", type=int, default=None, metavar="N",
                   help="size of the synthetic or gaussian set (default 300)")
    g.add_argument("--data-seed", type=int, default=None,
                   help="seed of the synthetic or gaussian set (default 0)")
    g.add_argument("--task", choices=["regression", "classification"], default=None,
                   help="classification: the 7-class view of regression labels")
    g.add_argument("--trust-pickle", action="store_true",
                   help="read the --data pickle with plain pickle instead of the restricted unpickler; "
                        "only for files you trust: lets the file run code")


def _generated_sources() -> list[str]:
    """Registered data sources whose loader needs no argument (no file to read)."""
    names = []
    for name in available_datasets():
        try:
            parameters = inspect.signature(DATASETS.get(name)).parameters.values()
        except (TypeError, ValueError):
            continue
        if all(p.default is not p.empty or p.kind in (p.VAR_POSITIONAL, p.VAR_KEYWORD) for p in parameters):
            names.append(name)
    return names


def _kept_options(base: DataConfig, source: str, given: Sequence[str] = ()) -> dict:
    """The loader options a config or ``--set data.options.*`` gave for ``source`` (its file path
    aside), so that ``--data FILE`` does not drop them. Options of another source are left behind,
    except those this command's ``--set`` names (``given``): the file's loader takes them, or refuses
    them by name, rather than dropping them unseen."""
    return {k: v for k, v in base.options.items() if k not in ("path", "label_pickle", "feature_dirs")
            and (base.source == source or k in given)}


def _set_options(args) -> list[str]:
    """The names of the ``data.options.*`` that this command's ``--set`` gives."""
    prefix = "data.options."
    return [item.split("=", 1)[0][len(prefix):].split(".", 1)[0]
            for item in getattr(args, "set", None) or [] if item.startswith(prefix)]


def _data_config(args, base: DataConfig) -> DataConfig:
    # A path that exists is a file to read even when it spells a source's name.
    named = args.data and not os.path.isfile(args.data) and args.data in available_datasets()
    if named and args.data not in _generated_sources():
        raise ValueError(f"--data {args.data}: the {args.data!r} source reads a file; give the file's "
                         "path (--data PATH, with --data-format if needed)")
    file_flags = [flag for flag, value in (("--data-format", args.data_format), ("--feature-dirs", args.feature_dirs),
                                          ("--sequences", args.sequences), ("--per-clip", args.per_clip)) if value]
    if file_flags and not (args.data and not named):
        raise ValueError(f"{', '.join(file_flags)} describe a --data file, and none is given; add --data PATH")
    if args.data and not named:
        if not os.path.isfile(args.data):
            what = "is a folder" if os.path.isdir(args.data) else "does not exist"
            raise ValueError(f"--data {args.data} {what}; give the path of an MMSA pickle or a GCNet "
                             f"label pickle, or a source name: {', '.join(_generated_sources())}")
        generated = [flag for flag, value in (("--synthetic-conversations", args.synthetic_conversations),
                                              ("--data-seed", args.data_seed)) if value is not None]
        if generated:
            raise ValueError(f"{', '.join(generated)} set the generated data, not a --data file; leave it out")
        fmt = args.data_format or ("gcnet" if args.feature_dirs else "mmsa")
        if fmt == "gcnet":
            if not args.feature_dirs:
                raise ValueError("--data-format gcnet needs --feature-dirs t=DIR,a=DIR,v=DIR")
            if args.sequences or args.per_clip:
                raise ValueError("--sequences and --per-clip read MMSA files; GCNet features are one vector "
                                 "per utterance")
            dirs = {}
            for item in _names(args.feature_dirs):
                if "=" not in item:
                    raise ValueError(f"--feature-dirs entries must be MODALITY=DIR, got {item!r}")
                k, v = item.split("=", 1)
                if not os.path.isdir(v):
                    raise ValueError(f"--feature-dirs {k}={v}: {v} is not a folder; give the folder of "
                                     f"modality {k!r}'s .npy files")
                dirs[k] = v
            data = DataConfig("gcnet", {**_kept_options(base, "gcnet", _set_options(args)),
                                        "label_pickle": args.data, "feature_dirs": dirs})
        else:
            data = DataConfig("mmsa", {**_kept_options(base, "mmsa", _set_options(args)), "path": args.data})
            if args.sequences:
                data.options["sequences"] = True
            if args.per_clip:
                data.options["per_clip"] = True
    else:
        data = DataConfig(base.source, dict(base.options), base.task)
        if named and args.data != base.source:
            data = DataConfig(args.data, {}, base.task)
        if data.source in _generated_sources():
            if args.synthetic_conversations is not None:
                data.options["num_conversations"] = args.synthetic_conversations
            if args.data_seed is not None:
                data.options["seed"] = args.data_seed
    if args.task is not None:
        data.task = args.task
    return data


def _add_protocol_options(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("missing-modality protocol")
    g.add_argument("--protocol", choices=list(PROTOCOL_KINDS), default=None)
    g.add_argument("--missing-rate", type=float, default=None,
                   help="random protocol: MR; literature protocol: the table's row label 0.0 ... 0.7")
    g.add_argument("--pattern", type=_names, default=None, metavar="M,M",
                   help="fixed protocol: the available modalities, e.g. t,a")
    g.add_argument("--mixture", type=_mixture, default=None, metavar="0.3;t,a;...",
                   help="mixed protocol: ';'-separated conditions, each a missing rate or an "
                        "availability set; every conversation draws one uniformly")


def _add_set_option(p: argparse.ArgumentParser, help_text: str) -> None:
    p.add_argument("--set", nargs="+", action="extend", default=[], metavar="KEY=VALUE", help=help_text)


def _json(record) -> str:
    """``record`` as indented JSON under the files' rule: NaN and infinity are ``null``."""
    return json_text(record, default=str)


def _base_config(args) -> RunConfig:
    """``--config FILE`` (or the defaults) with ``--set`` applied; the dedicated flags come after."""
    base = RunConfig.from_file(args.config) if args.config else RunConfig()
    return base.with_settings(args.set) if args.set else base


def _add_run_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--config", metavar="FILE", help="a RunConfig as JSON or YAML")
    _add_set_option(p, "any RunConfig setting by dotted name, a YAML value each (train.lr=3e-4 "
                       "model.dim=64 recoverer_kwargs.sampling_steps=10); applied over --config, under the "
                       "dedicated flags")
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
                   help="run directory: config.json, last.pt, best.pt, metrics.json, history.csv, train.log")
    p.add_argument("--no-resume", action="store_true", help="start over even if DIR/last.pt exists")
    p.add_argument("--tracker", action="append", default=None, metavar="NAME",
                   help="also send the per-epoch numbers to this tracker (tensorboard: "
                        "DIR/tensorboard/); repeatable; DIR/history.csv is always written")
    _add_run_options(p)
    _add_protocol_options(p)
    _add_data_options(p)


def _console_log(name: str):
    """A context manager that shows the INFO lines of logger ``name`` on stderr while a command runs
    (the library configures no handler); written through ``tqdm.write`` so a ``--progress`` bar
    stays whole."""
    import contextlib
    import logging
    import sys

    from tqdm.auto import tqdm

    class TqdmHandler(logging.Handler):
        def emit(self, record):
            tqdm.write(self.format(record), file=sys.stderr)

    @contextlib.contextmanager
    def shown():
        logger, handler = logging.getLogger(name), TqdmHandler()
        handler.setFormatter(logging.Formatter("%(asctime)s %(message)s", "%H:%M:%S"))
        level = logger.level
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        try:
            yield
        finally:
            logger.removeHandler(handler)
            logger.setLevel(level)

    return shown()


def _run_train(args) -> int:
    from mer.training import resolve_config, train
    from mer.training.distributed import DataParallel

    check_output_dir(args.out)
    cfg = resolve_config(_base_config(args), recoverer=args.recoverer, seed=args.seed, device=args.device,
                         epochs=args.epochs)
    cfg.data = _data_config(args, cfg.data)
    cfg.protocol = _protocol(args, cfg.protocol)
    cfg.train.progress = cfg.train.progress or args.progress
    if args.eval_samples is not None:
        cfg.train.eval_samples = args.eval_samples
    if args.tracker:
        cfg.train.trackers = list(dict.fromkeys([*cfg.train.trackers, *args.tracker]))
    dataset = load_data(cfg.data, trust_pickle=args.trust_pickle)
    with _console_log("mer.training"):
        trained = train(dataset, config=cfg, out_dir=args.out, resume=not args.no_resume)
    parallel = DataParallel.from_env()
    if parallel is not None and not parallel.is_main:  # under torchrun, rank 0 alone reports
        return 0
    # train() has scored the test split into metrics.json; evaluation is seeded, so no second pass.
    metrics = json.loads((pathlib.Path(args.out) / "metrics.json").read_text(encoding="utf8"))
    print(_json({"out": str(args.out), "best_epoch": trained.best_epoch, "test": metrics.get("test", {})}))
    return 0


def _add_evaluate(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", help=CHECKPOINT_HELP)
    p.add_argument("--split", default="test", choices=["train", "valid", "test"])
    p.add_argument("--mask-seed", type=int, default=None, help="seed of the masks (default: the run's)")
    p.add_argument("--eval-samples", type=int, default=None, metavar="K",
                   help="seeded draws averaged where the recoverer samples (the diffusion methods; "
                        "others run once) (default: the run's train.eval_samples)")
    p.add_argument("--device", default=None)
    p.add_argument("--out", metavar="FILE", help="also write the metrics as JSON")
    _add_set_option(p, _EVALUATION_SET_HELP)
    _add_protocol_options(p)
    _add_data_options(p)


#: What ``--set`` may change on a trained model (``evaluate``, ``predict``): not what the weights fix.
EVALUATION_SETTINGS = ("protocol.", "data.", "train.eval_batch_size", "train.eval_samples")
_EVALUATION_SET_HELP = ("settings that do not change the trained model, by dotted name: protocol.*, "
                        "data.*, train.eval_batch_size, train.eval_samples (e.g. protocol.missing_rate=0.3); "
                        "under the dedicated flags")


def _trained_inputs(args, doing: str):
    """The checkpoint's model (its config with ``--set`` applied), the dataset and the protocol an
    ``evaluate`` or ``predict`` command uses."""
    from mer.training import TrainedModel
    from mer.training.build import config_differences

    trained = TrainedModel.load(args.checkpoint, device=args.device)
    if args.set:
        changed = trained.config.with_settings(args.set)
        fixed = [k for k in config_differences(trained.config.to_dict(), changed.to_dict())
                 if not k.startswith(EVALUATION_SETTINGS)]
        if fixed:
            raise ValueError(f"--set {', '.join(fixed)}: fixed by the trained model; {doing} takes only "
                             "protocol.*, data.*, train.eval_batch_size and train.eval_samples")
        trained.config = changed
    cfg = trained.config
    if cfg.data.source == IN_MEMORY and not args.data:
        raise ValueError(f"{args.checkpoint} was trained on in-memory data ({cfg.data.options.get('name')!r}, "
                         f"fingerprint {cfg.data.options.get('fingerprint')}); pass --data FILE (and its "
                         f"format: --data-format, --feature-dirs) to {doing} it")
    data = _data_config(args, cfg.data)
    if not args.data:  # the run's own record: a relative path is relative to where it was trained
        for key in ("path", "label_pickle"):
            recorded = cfg.data.options.get(key)
            if recorded and not os.path.exists(recorded):
                raise ValueError(f"{recorded}, the data file in {args.checkpoint}'s config, is not found from "
                                 f"{os.getcwd()}: run from the folder the run was trained in, or give --data PATH")
    protocol = _protocol(args, cfg.protocol)
    if args.mask_seed is not None:
        protocol.seed = args.mask_seed
    elif protocol.seed is None:
        protocol.seed = cfg.mask_seed
    dataset = load_data(data, trust_pickle=args.trust_pickle)
    _warn_if_the_data_changed(args.checkpoint, trained.dataset_info, data == cfg.data, dataset)
    return trained, dataset, protocol


def _warn_if_the_data_changed(checkpoint, info: dict, as_recorded: bool, dataset) -> None:
    """Say so on stderr when the data the run's own config names (no other data asked for) are no
    longer the data it was trained on: the scores are then of other data, by the user's file, not by
    choice."""
    from mer.training.checkpoint import dataset_fingerprint

    saved = info.get("fingerprint")
    now = dataset_fingerprint(dataset) if as_recorded and saved else saved
    if now != saved:
        print(f"mer: warning: the data of {checkpoint}'s config ({dataset.name}) are not those it was trained on "
              f"(fingerprint {now}, trained on {saved}): the scores are of the data as they are now",
              file=sys.stderr)


#: What ``evaluate`` and ``predict`` read.
CHECKPOINT_HELP = ("a run directory (its best.pt), or a best.pt or last.pt file (last.pt: the last epoch's "
                   "weights)")
#: The files a ``mer train`` run folder holds; ``evaluate`` and ``predict`` never write over them.
RUN_FILES = ("best.pt", "last.pt", "config.json", "metrics.json", "history.csv", "train.log")


def _check_file_out(out: str, what: str) -> None:
    """Refuse an ``--out`` file that is a folder, or a file of a run folder (its checkpoint, config,
    metrics or logs): writing there would destroy the run."""
    path = pathlib.Path(out)
    if path.is_dir():
        raise ValueError(f"--out {out} is a folder; give the path of the {what} file to write")
    if path.name in RUN_FILES and any((path.parent / name).is_file() for name in ("best.pt", "last.pt")):
        raise ValueError(f"--out {out} is a file of the run in {path.parent}; writing it would destroy the run: "
                         "give another file name")


def _run_evaluate(args) -> int:
    if args.out:
        _check_file_out(args.out, "JSON")
    trained, dataset, protocol = _trained_inputs(args, "evaluate")
    metrics = trained.evaluate(dataset, args.split, protocol, samples=args.eval_samples)
    record = {"checkpoint": str(args.checkpoint), "split": args.split,
              "condition": protocol.condition, "mask_seed": protocol.seed, "metrics": metrics}
    text = _json(record)
    if args.out:
        atomic_write_text(text + "\n", args.out)
    print(text)
    return 0


def _add_predict(p: argparse.ArgumentParser) -> None:
    p.add_argument("checkpoint", help=CHECKPOINT_HELP)
    p.add_argument("--split", default="test", choices=["train", "valid", "test"])
    p.add_argument("--out", required=True, metavar="FILE",
                   help="CSV: conversation_id, utterance_id, label, prediction (regression) or "
                        "predicted_class and prob_0..prob_{C-1} (classification), available_<m>")
    p.add_argument("--mask-seed", type=int, default=None, help="seed of the masks (default: the run's)")
    p.add_argument("--eval-samples", type=int, default=None, metavar="K",
                   help="seeded draws whose predictions (or probabilities) are averaged where the "
                        "recoverer samples (default: the run's train.eval_samples)")
    p.add_argument("--device", default=None)
    _add_set_option(p, _EVALUATION_SET_HELP)
    _add_protocol_options(p)
    _add_data_options(p)


def _run_predict(args) -> int:
    _check_file_out(args.out, "CSV")
    trained, dataset, protocol = _trained_inputs(args, "predict with")
    preds = trained.predict(dataset, args.split, protocol, samples=args.eval_samples)
    atomic_write_text(predictions_csv(preds), args.out)
    print(f"{len(preds['utterance_id'])} predictions ({args.split} split, condition {protocol.condition}, "
          f"mask seed {protocol.seed}) in {args.out}")
    return 0


def predictions_csv(preds: dict) -> str:
    """:meth:`~mer.training.TrainedModel.predict`'s output as CSV text: a header, one row per
    utterance, ids first, probabilities as ``prob_0 … prob_{C-1}``, the mask as ``available_<m>``
    (1/0); floats at full precision."""
    columns = ["conversation_id", "utterance_id", "label"]
    values = [preds["conversation_id"].tolist(), preds["utterance_id"].tolist(), preds["label"].tolist()]
    if "probabilities" in preds:
        probs = preds["probabilities"]
        columns += ["predicted_class"] + [f"prob_{c}" for c in range(probs.shape[1])]
        values += [preds["predicted_class"].tolist()] + [probs[:, c].tolist() for c in range(probs.shape[1])]
    else:
        columns.append("prediction")
        values.append(preds["prediction"].tolist())
    for j, m in enumerate(preds["modalities"].tolist()):
        columns.append(f"available_{m}")
        values.append(preds["availability"][:, j].astype(int).tolist())
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(columns)
    writer.writerows(zip(*values))
    return buffer.getvalue()


def _add_benchmark(p: argparse.ArgumentParser) -> None:
    p.add_argument("--recoverers", type=_recoverer_specs, default=None, metavar="A,B[k=v]",
                   help="default: zero,mean,autoencoder,imder,gsdnet; a recoverer's own settings go in "
                        "brackets, read like --set values: mean,rohydr[hddm=false],gsdnet[sampling_steps=10]")
    p.add_argument("--protocol", choices=list(CONDITION_SETS), default="random",
                   help="conditions: missing rates, availability sets, both (a table section "
                        "each), or the literature's rows (default random)")
    p.add_argument("--missing-rates", type=_floats, default=None, metavar="R,R",
                   help="random protocol (default 0.0,0.1,...,0.6 and (M-1)/M); literature: the "
                        "row labels (default 0.1,...,0.7)")
    p.add_argument("--patterns", type=_patterns, default=None, metavar="t;a;t,a",
                   help="fixed protocol: ';'-separated availability sets (default: all 2^M-1)")
    p.add_argument("--training", choices=["per-condition", "shared"], default="per-condition",
                   help="per-condition: a model per condition, seed and recoverer (default); shared: "
                        "one model per seed and recoverer trained on the uniform mixture of all "
                        "conditions, then tested under each")
    p.add_argument("--seeds", type=_ints, default=None, metavar="S,S", help="default 1111,1112,1113")
    p.add_argument("--out", required=True, metavar="DIR")
    p.add_argument("--no-resume", action="store_true", help="rerun runs already in DIR/results.json")
    _add_executor_options(p)
    _add_run_options(p)
    _add_data_options(p)


def _add_executor_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--executor", choices=["local", "ray"], default="local",
                   help="where the trainings run: one after another here (default), or as Ray tasks "
                        "(needs pip install \".[ray]\")")
    p.add_argument("--address", default=None, metavar="ADDR",
                   help="ray: join this running cluster (e.g. auto, ray://host:10001) instead of "
                        "starting one here")
    p.add_argument("--workers", type=int, default=None, metavar="N",
                   help="ray: CPUs of the local cluster started here (default: all)")
    p.add_argument("--gpus-per-run", type=float, default=None, metavar="G",
                   help="ray: GPUs reserved per training (fractions share a GPU; default 0)")
    p.add_argument("--threads", type=int, default=None, metavar="N",
                   help="torch threads per training (default: ray 1, local torch's own); equal "
                        "threads give identical rows on both executors")


def _executor_options(args) -> dict:
    """The executor keywords the options of :func:`_add_executor_options` name."""
    options = {"threads": args.threads}
    ray_only = {"address": args.address, "workers": args.workers, "gpus_per_run": args.gpus_per_run}
    if args.executor == "ray":
        options.update(ray_only)
    elif any(v is not None for v in ray_only.values()):
        given = [f"--{k.replace('_', '-')}" for k, v in ray_only.items() if v is not None]
        raise ValueError(f"{', '.join(given)} need --executor ray")
    return {k: v for k, v in options.items() if v is not None}


def _run_benchmark(args) -> int:
    # Looked up on the package at call time, so `mer --help` stays fast and tests can stand in.
    import mer.benchmark as benchmark
    from mer.training import resolve_config

    check_output_dir(args.out)
    executor_options = _executor_options(args)
    base = resolve_config(_base_config(args), device=args.device, epochs=args.epochs)
    if args.eval_samples is not None:
        base.train.eval_samples = args.eval_samples
    base.data = _data_config(args, base.data)
    dataset = load_data(base.data, trust_pickle=args.trust_pickle)
    specs = args.recoverers or [(name, {}) for name in benchmark.DEFAULT_RECOVERERS]
    try:
        with _console_log("mer.benchmark"):
            rows = benchmark.run_benchmark(
                dataset,
                recoverers=[name for name, _ in specs],
                recoverer_kwargs={name: kwargs for name, kwargs in specs if kwargs},
                protocol=args.protocol,
                missing_rates=args.missing_rates,
                patterns=args.patterns,
                training=args.training.replace("-", "_"),
                seeds=args.seeds or list(benchmark.DEFAULT_SEEDS),
                config=base,
                out_dir=args.out,
                resume=not args.no_resume,
                progress=args.progress,
                executor=args.executor,
                executor_options=executor_options,
            )
    except benchmark.BenchmarkTaskError as error:  # the other rows were written: show them, then why
        table = pathlib.Path(args.out) / "table.md"
        if table.exists():
            print(table.read_text(encoding="utf8"))
        print(error.report(), file=sys.stderr)
        return 1
    print((pathlib.Path(args.out) / "table.md").read_text(encoding="utf8"))
    methods = [r for r in rows if not r.get("reference")]
    n = len(rows) - len(methods)
    references = f" and {n} Bayes reference row{'s' if n > 1 else ''}" if n else ""
    print(f"{len(methods)} result{'s' if len(methods) != 1 else ''} of this run (condition × seed × recoverer)"
          f"{references} in {args.out}/results.json, "
          f"figure in {args.out}/missing_rate.png")
    return 0


def _add_report(p: argparse.ArgumentParser) -> None:
    p.add_argument("results", nargs="+", metavar="RESULTS",
                   help="results.json files or benchmark output directories")
    p.add_argument("--out", required=True, metavar="DIR")


def _run_report(args) -> int:
    from mer.benchmark import merge_results, write_report
    from mer.benchmark.report import unequal_sets

    check_output_dir(args.out)
    held = pathlib.Path(args.out) / "results.json"
    inputs = {pathlib.Path(r).resolve() for r in args.results}
    if held.is_file() and not {held.resolve(), held.parent.resolve()} & inputs:
        raise ValueError(f"--out {args.out} already holds a results.json that is not among the results "
                         "reported: it would be replaced; give a new folder, or add it to the results")
    rows = merge_results(args.results)
    if not rows:
        raise ValueError("the given results hold no rows")
    tasks = {"regression" if "acc2_non0" in (r.get("metrics") or {}) else "classification" for r in rows}
    if len(tasks) > 1:
        raise ValueError("the results mix regression rows (acc2_non0, f1_non0, ...) and classification rows "
                         "(acc, f1): report each task's runs separately")
    task = tasks.pop()
    write_report(rows, args.out, task)
    print((pathlib.Path(args.out) / "table.md").read_text(encoding="utf8"))
    gaps = unequal_sets(rows)
    if gaps:
        print(f"mer report: warning: the runs' methods do not share their conditions and seeds "
              f"({' | '.join(gaps)}); each Average is over the conditions common to all methods, "
              "and cells or Averages over fewer seeds or conditions are marked †", file=sys.stderr)
    return 0


def _add_list(p: argparse.ArgumentParser) -> None:
    pass


def _run_list(args) -> int:
    from mer.recoverers import available_recoverers

    print("recoverers:", ", ".join(available_recoverers()))
    print("data sources:", ", ".join(available_datasets()),
          f"(--data NAME: {', '.join(_generated_sources())}; the others read a file, --data PATH)")
    return 0


def _add_plot(p: argparse.ArgumentParser) -> None:
    kinds = p.add_subparsers(dest="figure", required=True, metavar="FIGURE")
    curves = kinds.add_parser("curves", help="loss and validation-metric curves per epoch of runs")
    curves.add_argument("runs", nargs="+", metavar="RUN", help="run folders (mer train --out DIR)")
    curves.add_argument("--out", required=True, metavar="FIG.png", help="the PNG to write")
    curves.add_argument("--metric", default=None, metavar="NAME",
                        help="validation metric of the right panel, e.g. acc7, mae (default "
                             "acc2_non0, or acc for classification)")
    recovery = kinds.add_parser("recovery", help="t-SNE of real vs recovered features of dropped entries, "
                                                 "one row per run (GSDNet Fig. 3, IMDer Fig. 3 and 4)")
    recovery.add_argument("runs", nargs="+", metavar="RUN", help="checkpoints or run folders (mer train --out DIR)")
    recovery.add_argument("--out", required=True, metavar="DIR", help="folder for recovery.png and recovery.json")
    recovery.add_argument("--split", default="test", choices=["train", "valid", "test"])
    recovery.add_argument("--rate", type=float, default=None, metavar="R",
                          help="random missing rate of the masks (default: each run's own protocol)")
    recovery.add_argument("--pattern", type=_names, default=None, metavar="M,M",
                          help="fixed protocol instead: the available modalities, e.g. t,a")
    recovery.add_argument("--mask-seed", type=int, default=None, help="seed of the masks (default: the run's)")
    recovery.add_argument("--eval-samples", type=int, default=1, metavar="K",
                          help="seeded recoveries averaged where the recoverer samples (default 1)")
    recovery.add_argument("--max-points", type=int, default=400, metavar="N",
                          help="dropped entries per panel, at most (default 400)")
    recovery.add_argument("--device", default=None)
    recovery.set_defaults(set=[], protocol=None, missing_rate=None, mixture=None)
    _add_data_options(recovery)


def _run_plot(args) -> int:
    if args.figure == "recovery":
        return _run_plot_recovery(args)
    from mer.benchmark.curves import plot_curves

    if os.path.isdir(args.out):
        raise ValueError(f"--out {args.out} is a folder; give the path of the PNG to write")
    metric = plot_curves(args.runs, args.out, metric=args.metric)
    print(f"loss and valid {metric} of {len(args.runs)} run{'s' if len(args.runs) > 1 else ''} "
          f"in {args.out}")
    return 0


def _run_plot_recovery(args) -> int:
    from mer.benchmark.recovery_figure import plot_recovery

    if args.rate is not None and args.pattern is not None:
        raise ValueError("give --rate or --pattern, not both")
    if os.path.isfile(args.out):
        raise ValueError(f"--out {args.out} is a file; give the folder to write recovery.png into")
    args.missing_rate = args.rate
    recoveries = []
    for run in args.runs:
        args.checkpoint = run
        trained, dataset, protocol = _trained_inputs(args, "plot the recovery of")
        out = trained.recover(dataset, args.split, protocol, samples=args.eval_samples)
        recoveries.append((pathlib.Path(run).name or str(run), out))
    summary = plot_recovery(recoveries, args.out, max_points=args.max_points)
    for label, per_modality in summary.items():
        cells = ", ".join(f"{m} {v['recovery_mse']:.3f}" for m, v in per_modality.items())
        print(f"{label}: recovery MSE {cells}")
    print(f"figure in {pathlib.Path(args.out) / 'recovery.png'}")
    return 0


def _add_reproduce(p: argparse.ArgumentParser) -> None:
    p.add_argument("paper", metavar="PAPER",
                   help="imder, rohydr, md2n or gsdnet (or a recipe name such as imder_mosei); "
                        "`mer reproduce list` lists the recipes")
    p.add_argument("--data", metavar="PATH",
                   help="the file the recipe reads (an MMSA aligned_50.pkl / unaligned_50.pkl, or a GCNet "
                        "label pickle with --feature-dirs); not needed with --dry-run")
    p.add_argument("--dataset", choices=["mosi", "mosei", "iemocap"], default=None,
                   help="which of the paper's recipes (default: its MOSI one)")
    p.add_argument("--feature-dirs", metavar="M=DIR,...", help="GCNet recipes: per-modality .npy directories")
    p.add_argument("--out", metavar="DIR", help="results.json, table.md, plan.md, comparison.md / .json")
    p.add_argument("--dry-run", action="store_true",
                   help="print the plan, the recipe and the published table; read no data, train nothing")
    p.add_argument("--seeds", type=_ints, default=None, metavar="S,S",
                   help="override the recipe's seeds (the comparison lists it as a deviation)")
    p.add_argument("--epochs", type=int, default=None, help="override the recipe's epochs (a deviation)")
    p.add_argument("--conditions", type=_names, default=None, metavar="0.3,t+a",
                   help="only these table rows (a deviation)")
    p.add_argument("--device", default=None, help="cpu, cuda or cuda:K")
    p.add_argument("--no-resume", action="store_true", help="rerun runs already in DIR/results.json")
    p.add_argument("--progress", action="store_true", help="progress bars per run")
    p.add_argument("--trust-pickle", action="store_true",
                   help="read --data with plain pickle (only for files you trust: lets the file run code)")
    _add_executor_options(p)


def _run_reproduce(args) -> int:
    from mer.reproduce import available_recipes
    from mer.reproduce.run import plan_reproduction, reproduce

    if args.paper == "list":
        print("\n".join(available_recipes()))
        return 0
    plan = plan_reproduction(args.paper, args.dataset, seeds=args.seeds, epochs=args.epochs,
                             conditions=args.conditions)
    if args.dry_run:
        print(plan.describe())
        return 0
    if not args.data or not args.out:
        raise ValueError("give --data PATH and --out DIR (or --dry-run to see the plan without data)")
    check_output_dir(args.out)
    executor_options = _executor_options(args)
    feature_dirs = None
    if args.feature_dirs:
        feature_dirs = dict(item.split("=", 1) for item in _names(args.feature_dirs) if "=" in item)
    with _console_log("mer.benchmark"):
        reproduce(args.paper, args.data, dataset=args.dataset, out_dir=args.out, feature_dirs=feature_dirs,
                  seeds=args.seeds, epochs=args.epochs, conditions=args.conditions, device=args.device,
                  resume=not args.no_resume, progress=args.progress, trust_pickle=args.trust_pickle,
                  executor=args.executor, executor_options=executor_options)
    print((pathlib.Path(args.out) / "comparison.md").read_text(encoding="utf8"))
    return 0


Command = tuple[Callable[[argparse.ArgumentParser], None], Callable[[argparse.Namespace], int], str]

#: command name → (adds its options, runs it, one-line help), in the order ``mer --help`` lists them.
COMMANDS: dict[str, Command] = {
    "train": (_add_train, _run_train, "train one recoverer under one protocol setting"),
    "evaluate": (_add_evaluate, _run_evaluate, "evaluate a checkpoint under a protocol setting"),
    "predict": (_add_predict, _run_predict, "per-utterance predictions of a checkpoint, as CSV"),
    "benchmark": (_add_benchmark, _run_benchmark,
                  "recoverers × conditions × seeds; writes results, table, figure"),
    "report": (_add_report, _run_report,
               "merge benchmark results into one results.json, table and figure"),
    "reproduce": (_add_reproduce, _run_reproduce,
                  "a seed paper's table with its recipe, beside the published numbers"),
    "list": (_add_list, _run_list, "list registered recoverers and data sources"),
    "plot": (_add_plot, _run_plot, "figures of run folders: `mer plot curves RUN... --out FIG.png`, "
                                    "`mer plot recovery RUN... --out DIR`"),
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


#: Commands whose output folder a rerun of the same command goes on from after an interruption.
RESUMABLE_COMMANDS = ("train", "benchmark", "reproduce")


def main(argv: Sequence[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return run_command(f"mer {args.command}", lambda: args._run(args), debug=args.debug,
                           user_errors=(yaml.YAMLError,))
    except KeyboardInterrupt:
        if args.debug:
            raise
        then = ("; the same command goes on from what was saved (--no-resume starts over)"
                if args.command in RESUMABLE_COMMANDS else "")
        print(f"\nmer {args.command}: interrupted{then}", file=sys.stderr)
        return 130
