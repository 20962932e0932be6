"""``mer reproduce``: run a seed paper's table with its recipe and write our numbers beside the
published ones.

:func:`plan_reproduction` says what a reproduction would run (the recipe, its conditions × seeds,
the published table) without touching data; :func:`reproduce` runs it through
:func:`mer.benchmark.run_benchmark` — so a reproduction folder is resumable and merge-safe like a
benchmark folder: an interrupted run picks up where it stopped, a rerun reuses finished rows — and
writes ``comparison.md`` / ``comparison.json``: for every table row and metric, our mean ± std over
the seeds, the published value and the difference, plus the paper's ``Average`` rows.
"""

from __future__ import annotations

import dataclasses
import math
import pathlib
from typing import Any, Mapping, Sequence

import numpy as np

from spectraldiff.atomic import atomic_write_json, atomic_write_text

from mer.benchmark.report import load_results
from mer.benchmark.run import run_benchmark
from mer.data.protocol import MissingProtocol
from mer.data.source import DataConfig, load_data
from mer.reproduce.recipes import (Recipe, available_recipes, condition_label, load_recipe,
                                   published_results, recipe_table)

__all__ = ["ReproductionPlan", "plan_reproduction", "reproduce", "compare", "comparison_markdown",
           "PERCENT_METRICS"]

#: Our metrics are fractions; the papers print these as percentages.
PERCENT_METRICS = ("acc", "f1")
AVERAGE = "Average"


@dataclasses.dataclass
class ReproductionPlan:
    """What :func:`reproduce` runs for one recipe.

    Attributes
    ----------
    recipe : Recipe
    seeds : list of int
        The recipe's seeds unless overridden.
    epochs : int or None
        An override of the recipe's ``train.epochs`` (``None``: the recipe's).
    """

    recipe: Recipe
    seeds: list[int]
    epochs: int | None = None
    labels: list[str] | None = None

    @property
    def conditions(self) -> list[dict]:
        """The condition dicts to run: the recipe's, or those of :attr:`labels`."""
        if self.labels is None:
            return [dict(c) for c in self.recipe.conditions]
        return [self.recipe.condition(label) for label in self.labels]

    @property
    def runs(self) -> list[tuple[str, int]]:
        """``(row label, seed)`` of every training, in run order."""
        return [(condition_label(c), seed) for c in self.conditions for seed in self.seeds]

    def deviations(self) -> list[str]:
        """How this plan departs from the recipe (overrides a reader must know about)."""
        out = []
        if list(self.seeds) != list(self.recipe.seeds):
            out.append(f"seeds {self.seeds} instead of the recipe's {list(self.recipe.seeds)}")
        if self.labels is not None:
            out.append(f"only the rows {', '.join(self.labels)} of {len(self.recipe.conditions)}")
        if self.epochs is not None and self.epochs != self.recipe.config.get("train", {}).get("epochs"):
            out.append(f"{self.epochs} epochs instead of the recipe's "
                       f"{self.recipe.config.get('train', {}).get('epochs')}")
        return out

    def describe(self) -> str:
        """The plan, the recipe and the published table as Markdown (``--dry-run`` prints it)."""
        r = self.recipe
        lines = [f"# Reproduction plan: {r.title}", "",
                 f"- recipe `{r.name}`: recoverer `{r.recoverer}`, data source `{r.data['source']}` "
                 f"({r.data.get('file', 'file not named')}), options {dict(r.data.get('options') or {})}",
                 f"- tables: {', '.join(r.tables)}",
                 f"- {len(self.conditions)} conditions × {len(self.seeds)} seeds = {len(self.runs)} trainings",
                 f"- conditions: {', '.join(condition_label(c) for c in self.conditions)}",
                 f"- seeds: {', '.join(map(str, self.seeds))}"]
        lines += [f"- deviation: {d}" for d in self.deviations()]
        lines += [f"- not reproduced: {n}" for n in r.not_reproduced]
        lines += ["", "## Recipe", "", recipe_table(r), "", "## Published", "",
                  published_markdown(r)]
        return "\n".join(lines) + "\n"


def plan_reproduction(paper: str, dataset: str | None = None, *, seeds: Sequence[int] | None = None,
                      epochs: int | None = None, conditions: Sequence[str] | None = None) -> ReproductionPlan:
    """The plan of ``paper``'s recipe for ``dataset`` (default: the paper's MOSI recipe, e.g.
    ``imder`` → ``imder_mosi``); ``paper`` may also be a recipe name (``"imder_mosei"``).
    ``conditions``: only these row labels (``"0.3"``, ``"t+a"``)."""
    recipe = _recipe(paper, dataset)
    labels = None
    if conditions is not None:
        labels = [str(c) for c in conditions]
        for label in labels:
            recipe.condition(label)  # unknown labels fail here, listing the recipe's
    chosen = [int(s) for s in (seeds if seeds is not None else recipe.seeds)]
    if not chosen:
        raise ValueError("give at least one seed")
    if epochs is not None and int(epochs) < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    return ReproductionPlan(recipe, chosen, None if epochs is None else int(epochs), labels)


def reproduce(
    paper: str,
    data: str | pathlib.Path,
    *,
    dataset: str | None = None,
    out_dir: str | pathlib.Path,
    feature_dirs: Mapping[str, str] | None = None,
    seeds: Sequence[int] | None = None,
    epochs: int | None = None,
    conditions: Sequence[str] | None = None,
    device: str | None = None,
    resume: bool = True,
    progress: bool = False,
    trust_pickle: bool = False,
    executor: str = "local",
    executor_options: Mapping | None = None,
) -> list[dict]:
    """Run ``paper``'s table on ``data`` with its recipe and write the comparison into ``out_dir``.

    Parameters
    ----------
    paper : str
        ``imder``, ``rohydr``, ``md2n``, ``gsdnet``, or a recipe name (``imder_mosei``).
    data : path
        The data file the recipe names (an MMSA ``aligned_50.pkl`` / ``unaligned_50.pkl``, or a GCNet
        label pickle with ``feature_dirs``).
    dataset : {"mosi", "mosei", "iemocap"}, optional
        Which of the paper's recipes (default: its first).
    out_dir : path
        The benchmark folder (``results.json``, ``table.md``) plus ``comparison.md`` /
        ``comparison.json`` and ``plan.md``; resumable and merge-safe as in
        :func:`~mer.benchmark.run_benchmark`.
    seeds, epochs, conditions : optional
        Overrides of the recipe's seeds, epochs and rows (labels such as ``"0.7"``, ``"t+a"``), for a
        quick look; ``comparison.md`` lists them as deviations.
    device, resume, progress, trust_pickle, executor, executor_options
        As in :func:`~mer.benchmark.run_benchmark` and :func:`~mer.data.load_data` (``executor="ray"``
        spreads the trainings over a Ray cluster).

    Returns
    -------
    list of dict
        The comparison rows (:func:`compare`).
    """
    plan = plan_reproduction(paper, dataset, seeds=seeds, epochs=epochs, conditions=conditions)
    recipe = plan.recipe
    data_path = pathlib.Path(data)
    if not data_path.is_file():
        raise ValueError(f"data {data_path} is not a file; give the {recipe.data.get('file', 'data')} "
                         f"file recipe {recipe.name!r} reads")
    probe = recipe.run_config(data_path, plan.seeds[0], recipe.conditions[0], feature_dirs=feature_dirs)
    loaded = load_data(DataConfig(probe.data.source, probe.data.options, probe.data.task),
                       trust_pickle=trust_pickle)
    out = pathlib.Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    atomic_write_text(plan.describe(), out / "plan.md")
    base = probe.to_dict()
    base.pop("protocol")
    for kind, chosen in _conditions_by_kind(plan.conditions).items():
        run_benchmark(
            loaded,
            recoverers=[recipe.recoverer],
            protocol=kind,
            missing_rates=[c.missing_rate for c in chosen] if kind != "fixed" else None,
            patterns=[list(c.pattern) for c in chosen] if kind == "fixed" else None,
            seeds=plan.seeds,
            epochs=plan.epochs,
            config=base,
            recoverer_kwargs={recipe.recoverer: dict(base.get("recoverer_kwargs") or {})},
            device=device,
            out_dir=out,
            resume=resume,
            progress=progress,
            executor=executor,
            executor_options=dict(executor_options or {}),
        )
    rows = [r for r in load_results(out / "results.json") if r.get("recoverer") == recipe.recoverer
            and int(r.get("seed", -1)) in plan.seeds]
    comparison = compare(recipe, rows, plan.conditions)
    atomic_write_json({"recipe": recipe.name, "data": str(data_path), "seeds": plan.seeds,
                       "deviations": plan.deviations(), "rows": comparison}, out / "comparison.json")
    atomic_write_text(comparison_markdown(plan, comparison), out / "comparison.md")
    return comparison


def compare(recipe: Recipe, rows: Sequence[Mapping], conditions: Sequence[Mapping] | None = None) -> list[dict]:
    """Our numbers beside the published ones.

    ``rows`` are benchmark rows of the recipe's recoverer. For every table row label (the recipe's
    conditions, then ``Average`` per protocol where the recipe has one) and every metric of the
    recipe: ``ours`` (mean over seeds, in the paper's units: accuracies and F1 in percent), ``std``
    (sample std over seeds; NaN for one seed), ``seeds`` (how many), ``published`` (NaN where the
    paper prints none) and ``difference`` (ours − published). An ``Average`` is taken per seed over
    the labels the recipe names, and only over seeds that have every one of them.
    """
    per_seed: dict[tuple[str, str], dict[int, dict]] = {}
    for row in rows:
        label = _row_label(row)
        per_seed.setdefault((row["protocol"], label), {})[int(row["seed"])] = row["metrics"]
    published = {(p["protocol"], p["condition"], p["metric"]): p["value"]
                 for p in published_results(recipe.paper, recipe.dataset)}
    out = []

    def add(protocol: str, label: str, values_by_seed: Mapping[int, float], metric: str) -> None:
        values = [v for v in values_by_seed.values() if v is not None and math.isfinite(v)]
        mean = float(np.mean(values)) if values else float("nan")
        std = float(np.std(values, ddof=1)) if len(values) > 1 else float("nan")
        ref = published.get((protocol, label, metric), float("nan"))
        out.append({"protocol": protocol, "condition": label, "metric": metric, "ours": mean, "std": std,
                    "seeds": len(values), "published": ref, "difference": mean - ref})

    for condition in (recipe.conditions if conditions is None else conditions):
        protocol, label = condition["kind"], condition_label(condition)
        seeds = per_seed.get((protocol, label), {})
        for metric in recipe.metrics:
            add(protocol, label, {s: _scaled(metric, m.get(metric)) for s, m in seeds.items()}, metric)
    for protocol, labels in (("literature", recipe.average), ("fixed", recipe.average_fixed)):
        if not labels:
            continue
        names = [f"{x:.1f}" if isinstance(x, float) else str(x) for x in labels]
        complete = set.intersection(*(set(per_seed.get((protocol, n), {})) for n in names))
        for metric in recipe.metrics:
            averages = {s: _mean_over([_scaled(metric, per_seed[(protocol, n)][s].get(metric)) for n in names])
                        for s in sorted(complete)}
            add(protocol, AVERAGE, averages, metric)
    return out


def comparison_markdown(plan: ReproductionPlan, comparison: Sequence[Mapping]) -> str:
    """``comparison.md``: one table per protocol, a row per table row and a column group per metric
    (ours mean ± std | published | difference)."""
    r = plan.recipe
    lines = [f"# {r.title}: ours beside the published table", "",
             f"Recipe `{r.name}`, recoverer `{r.recoverer}`, seeds {', '.join(map(str, plan.seeds))}. "
             "Ours: mean ± sample std over the seeds (accuracies and F1 in percent, as printed); "
             "published: the paper's own number for its method; difference: ours − published."]
    lines += [f"- deviation: {d}" for d in plan.deviations()]
    lines += [f"- not reproduced: {n}" for n in r.not_reproduced]
    for protocol in dict.fromkeys(c["protocol"] for c in comparison):
        part = [c for c in comparison if c["protocol"] == protocol]
        metrics = list(dict.fromkeys(c["metric"] for c in part))
        header = "| row | " + " | ".join(f"{m} ours | {m} published | {m} diff" for m in metrics) + " |"
        lines += ["", f"## {'MR rows (literature protocol)' if protocol == 'literature' else protocol.capitalize()}",
                  "", header, "|---|" + "---:|" * (3 * len(metrics))]
        for label in dict.fromkeys(c["condition"] for c in part):
            cells = []
            for m in metrics:
                c = next(x for x in part if x["condition"] == label and x["metric"] == m)
                cells += [_cell(c["ours"], c["std"]), _cell(c["published"]), _cell(c["difference"], signed=True)]
            lines.append(f"| {label} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def published_markdown(recipe: Recipe) -> str:
    """The paper's published numbers of this recipe as a Markdown table (row × metric)."""
    rows = published_results(recipe.paper, recipe.dataset)
    if not rows:
        return "(no published numbers for this recipe)"
    metrics = list(dict.fromkeys(r["metric"] for r in rows))
    lines = ["| protocol | row | " + " | ".join(metrics) + " | source |", "|---|---|" + "---:|" * len(metrics) + "---|"]
    for key in dict.fromkeys((r["protocol"], r["condition"]) for r in rows):
        cells = {r["metric"]: r for r in rows if (r["protocol"], r["condition"]) == key}
        source = next(iter(cells.values()))["source"]
        lines.append(f"| {key[0]} | {key[1]} | " + " | ".join(_cell(cells[m]["value"]) if m in cells else ""
                                                            for m in metrics) + f" | {source} |")
    return "\n".join(lines)


def _recipe(paper: str, dataset: str | None) -> Recipe:
    if dataset is None and "_" not in paper:
        own = [n for n in available_recipes() if n.startswith(f"{paper.lower()}_")]
        if not own:
            return load_recipe(paper)  # raises, listing the recipes
        preferred = [n for n in own if n.endswith("_mosi")]
        return load_recipe((preferred or own)[0])
    return load_recipe(paper, dataset)


def _conditions_by_kind(conditions: Sequence[Mapping]) -> dict[str, list[MissingProtocol]]:
    out: dict[str, list[MissingProtocol]] = {}
    for condition in conditions:
        protocol = MissingProtocol.parse(dict(condition))
        out.setdefault(protocol.kind, []).append(protocol)
    return out


def _row_label(row: Mapping) -> str:
    if row["protocol"] == "literature":
        return condition_label({"kind": "literature", "missing_rate": row["literature_label"]})
    if row["protocol"] == "fixed":
        return condition_label({"kind": "fixed", "pattern": row["pattern"]})
    return condition_label({"kind": row["protocol"], "missing_rate": row.get("missing_rate", 0.0)})


def _scaled(metric: str, value: Any) -> float | None:
    if value is None:
        return None
    value = float(value)
    return 100.0 * value if metric.startswith(PERCENT_METRICS) else value


def _mean_over(values: Sequence[float | None]) -> float:
    """The paper's ``Average`` of one seed: the plain mean over the recipe's labels."""
    if any(v is None for v in values):
        return float("nan")
    return float(np.mean(values))


def _cell(value: float, std: float | None = None, *, signed: bool = False) -> str:
    if value is None or not math.isfinite(value):
        return "–"
    text = f"{value:+.2f}" if signed else f"{value:.2f}"
    if std is not None and math.isfinite(std):
        text += f" ± {std:.2f}"
    return text
