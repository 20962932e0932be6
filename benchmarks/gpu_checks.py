"""The GPU checks of ``docs/eigh.md``, ready to run in one call of at most 8 minutes on a borrowed GPU
machine that has a newer torch and no DGL: ``spectraldiff`` only (this file never imports ``mer``).

Usually started by ``benchmarks/gpu_checks.sh [--dry-run] [--out DIR]``. Parts, in this order, each
a subprocess with its own time budget (a part that runs over is killed and reported; the others
still run, and the whole stays under ``--budget-s``):

``eigh-key``
    ``python -m spectraldiff bench-eigh`` at the goal point: n = 64, B = 4096, float32, backends
    ``torch``, ``jacobi``, ``auto`` (raw ``torch.linalg.eigh`` is always timed as the reference).
``sampling``
    The reverse diffusion of ``spectraldiff.generation``'s spectral model (its state: ``n``
    eigenvalues per graph, its networks at ``generate``'s default widths, Euler–Maruyama, 50 and 100
    steps) on the device, plus the reconstruction ``U diag(λ) Uᵀ``: seconds per graph. The generation
    pipeline itself (networkx graphs, thresholding) runs on CPU only and is not timed here.
``gsdnet``
    A GSDNet-sized spectral sampler: structure graphs of ``N`` utterances decomposed by
    ``batched_eigh``, a ``FeatureScoreNet`` over ``(B, N, D)`` features and an ``EigenvalueScoreNet``
    over ``(B, N, M)`` spectra (GSDNet's defaults: width 64, 2 layers), the Heun probability-flow ODE
    over both: seconds per batch of conversations.
``eigh-small``, ``eigh-large-float32``, ``eigh-large-float64``
    The grid: backends ``torch``, ``jacobi``, ``auto``; n = 8…256; B = 1…8192; both dtypes.

Outside the plan, ``gpu_checks.sh vectors --out DIR`` times ``spectral_vectors`` sampling beside the
adjacency baseline at the same steps (issue 17's speed goal; :func:`run_vectors`).

Writes under ``--out``: each part's JSON (and the eigh harness's Markdown and figure) in a folder of
its own, ``summary.json`` (every part's command, status, seconds, and the two goal figures when
measured) and ``summary.md``. ``--dry-run`` runs the same plan on the CPU at tiny sizes (seconds) and
prints each command first: it checks the plan, not the GPU.
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import json
import os
import pathlib
import platform
import shlex
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parents[1]
#: The goal point of the issue: ``auto`` against raw ``torch.linalg.eigh`` (the dry run's stand-in).
KEY_POINT = {"dtype": "float32", "n": 64, "batch": 4096}
DRY_KEY_POINT = {"dtype": "float32", "n": 8, "batch": 4}
#: n up to which the fp32 roofline goal (≥ 10 % of peak) is judged.
ROOFLINE_MAX_N = 32


@dataclasses.dataclass
class Part:
    name: str
    budget_s: float
    argv: list[str]
    folder: str


def _bench_eigh(out: pathlib.Path, name: str, device: str, sizes: str, batches: str, dtypes: str,
                repeats: int, min_time: float, max_seconds: float) -> list[str]:
    return [sys.executable, "-m", "spectraldiff", "bench-eigh", "--device", device, "--dtype", dtypes,
            "--sizes", sizes, "--batches", batches, "--backends", "torch,jacobi,auto",
            "--repeats", str(repeats), "--min-time", str(min_time), "--max-seconds", str(max_seconds),
            "--warmup", "1", "--seed", "0", "--no-progress", "--save-crossover", "--out", str(out / name)]


def plan(out: pathlib.Path, dry_run: bool) -> list[Part]:
    """The parts, with the full-size options on CUDA, or tiny ones on the CPU for ``dry_run``."""
    me = [sys.executable, str(pathlib.Path(__file__).resolve())]
    if dry_run:
        device, eigh = "cpu", dict(repeats=1, min_time=0.0, max_seconds=2.0)
        return [
            Part("eigh-key", 60, _bench_eigh(out, "eigh-key", device, str(DRY_KEY_POINT["n"]),
                                         str(DRY_KEY_POINT["batch"]), "float32", **eigh), "eigh-key"),
            Part("sampling", 60, me + ["sampling", "--device", device, "--out", str(out / "sampling"),
                                       "--cases", "community_small:12:4", "--steps", "3"], "sampling"),
            Part("gsdnet", 60, me + ["gsdnet", "--device", device, "--out", str(out / "gsdnet"),
                                     "--cases", "2:6:4,4,4", "--steps", "2"], "gsdnet"),
            Part("eigh-small", 60, _bench_eigh(out, "eigh-small", device, "8,16", "1,4", "float32,float64",
                                               **eigh), "eigh-small"),
        ]
    device = "cuda"
    return [
        Part("eigh-key", 70, _bench_eigh(out, "eigh-key", device, "64", "4096", "float32", repeats=5,
                                         min_time=0.2, max_seconds=20), "eigh-key"),
        Part("sampling", 45, me + ["sampling", "--device", device, "--out", str(out / "sampling")], "sampling"),
        Part("gsdnet", 45, me + ["gsdnet", "--device", device, "--out", str(out / "gsdnet")], "gsdnet"),
        Part("eigh-small", 110, _bench_eigh(out, "eigh-small", device, "8,16,32", "1,64,1024,4096,8192",
                                            "float32,float64", repeats=5, min_time=0.1, max_seconds=2),
             "eigh-small"),
        Part("eigh-large-float32", 95, _bench_eigh(out, "eigh-large-float32", device, "64,128,256",
                                                   "1,64,1024,4096,8192", "float32", repeats=3,
                                                   min_time=0.05, max_seconds=2), "eigh-large-float32"),
        Part("eigh-large-float64", 95, _bench_eigh(out, "eigh-large-float64", device, "64,128,256",
                                                   "1,64,1024,4096,8192", "float64", repeats=3,
                                                   min_time=0.05, max_seconds=2), "eigh-large-float64"),
    ]


# ------------------------------------------------------------------------------ the timed parts
def _timer(device: str):
    import torch

    def timed(fn, repeats: int) -> list[float]:
        fn()  # warm-up: kernels, allocator, cuBLAS handles
        times = []
        for _ in range(repeats):
            if device.startswith("cuda"):
                torch.cuda.synchronize()
            started = time.perf_counter()
            fn()
            if device.startswith("cuda"):
                torch.cuda.synchronize()  # a bare timer only measures the launches
            times.append(time.perf_counter() - started)
        return times

    return timed


def _random_bases(B: int, n: int, device: str):
    """Eigenvectors ``(B, n, n)`` and eigenvalues ``(B, n)`` of random weighted graphs, through
    ``batched_eigh`` on the device (the way both models get their bases)."""
    import torch

    from spectraldiff import batched_eigh

    g = torch.Generator(device="cpu").manual_seed(0)
    upper = torch.triu(torch.rand(B, n, n, generator=g) * (torch.rand(B, n, n, generator=g) < 0.3), diagonal=1)
    A = (upper + upper.mT).to(device)
    sizes = torch.full((B,), n, dtype=torch.long, device=device)
    values, vectors = batched_eigh(A, sizes)
    return values, vectors


def _machine(device: str) -> dict:
    import torch

    return {"node": platform.node(), "python": platform.python_version(), "torch": torch.__version__,
            "cuda": torch.version.cuda, "device": device,
            "device_name": torch.cuda.get_device_name() if device.startswith("cuda") else "cpu",
            "threads": torch.get_num_threads()}


def run_sampling(args) -> dict:
    """Seconds per graph of the spectral generator's reverse diffusion on ``args.device``."""
    import torch

    from spectraldiff import VPSDE, EigenvalueScoreNet, SpectrumMLPScoreNet
    from spectraldiff.sampling import pc_sampler
    from spectraldiff.score_networks import NoiseToScore

    timed = _timer(args.device)
    sde = VPSDE()
    rows = []
    for case in args.cases.split(";"):
        dataset, n, B = case.split(":")
        n, B = int(n), int(B)
        _, U = _random_bases(B, n, args.device)
        mask = torch.ones(B, n, dtype=torch.bool, device=args.device)
        # generate's default widths: spectral MLP 120 (64 on grid, as in generation_grid.py), transformer 64.
        for network_name, network in (
                ("mlp", SpectrumMLPScoreNet(n, hidden_dim=64 if n > 100 else 120, num_layers=3)),
                ("transformer", EigenvalueScoreNet(hidden_dim=64, num_layers=3))):
            network = network.to(args.device).eval()
            score = NoiseToScore(network, sde, call=lambda net, x, t, c: net(x, t, mask, c))
            for steps in [int(s) for s in args.steps.split(",")]:
                def sample():
                    with torch.no_grad():
                        x_T = sde.prior_sampling(mask.shape, device=args.device)
                        lam = pc_sampler(sde, score, x_T, steps=steps, predictor="euler_maruyama", mask=mask)
                        return (U * lam[:, None, :]) @ U.mT

                times = timed(sample, args.repeats)
                best = min(times)
                rows.append({"dataset": dataset, "n": n, "graphs": B, "network": network_name, "steps": steps,
                             "seconds": times, "best_seconds": best, "seconds_per_graph": best / B,
                             "parameters": sum(p.numel() for p in network.parameters())})
                print(f"sampling {dataset} n={n} B={B} {network_name} {steps} steps: "
                      f"{best / B * 1e3:.3f} ms per graph", flush=True)
    return {"part": "sampling", "machine": _machine(args.device), "rows": rows}


def run_gsdnet(args) -> dict:
    """Seconds per batch of GSDNet's spectral sampler (features and spectra) on ``args.device``."""
    import torch

    from spectraldiff import VPSDE, EigenvalueScoreNet, FeatureScoreNet
    from spectraldiff.sampling import ode_sampler

    timed = _timer(args.device)
    sde = VPSDE()
    hidden, layers = 64, 2  # GSDNet's defaults (mer.recoverers.gsdnet.GSDNet)
    rows = []
    for case in args.cases.split(";"):
        B, N, dims = case.split(":")
        B, N, dims = int(B), int(N), [int(d) for d in dims.split(",")]
        D, M = sum(dims), len(dims)
        structure, U = _random_bases(B, N, args.device)
        utterances = torch.ones(B, N, dtype=torch.bool, device=args.device)
        features = FeatureScoreNet(D, hidden, layers, condition_dim=D + M).to(args.device).eval()
        spectra = EigenvalueScoreNet(hidden, layers, condition_dim=2 * M + 3,
                                     attention_budget=2**24).to(args.device).eval()
        g = torch.Generator(device="cpu").manual_seed(1)
        feature_condition = torch.randn(B, N, D + M, generator=g).to(args.device)
        graph_condition = torch.randn(B * M, N, 2 * M + 3, generator=g).to(args.device)
        missing = (torch.rand(B, N, D, generator=g) < 0.5).to(args.device)
        masks = {"features": missing, "spectra": utterances[:, :, None].expand(B, N, M)}

        def score_fn(state, t, c):
            eps_x = features(state["features"], structure, U, t, utterances, feature_condition)
            flat = state["spectra"].permute(0, 2, 1).reshape(B * M, N)
            eps_g = spectra(flat, t.repeat_interleave(M), utterances.repeat_interleave(M, 0), graph_condition)
            eps_g = eps_g.reshape(B, M, N).permute(0, 2, 1)
            return {"features": sde.score_from_noise(eps_x, t), "spectra": sde.score_from_noise(eps_g, t)}

        for steps in [int(s) for s in args.steps.split(",")]:
            def sample():
                with torch.no_grad():
                    x_T = {"features": sde.prior_sampling((B, N, D), device=args.device),
                           "spectra": sde.prior_sampling((B, N, M), device=args.device)}
                    return ode_sampler(sde, score_fn, x_T, steps=steps, method="heun", eps=0.8, mask=masks)

            times = timed(sample, args.repeats)
            best = min(times)
            rows.append({"conversations": B, "utterances": N, "feature_dims": dims, "steps": steps,
                         "seconds": times, "best_seconds": best, "seconds_per_conversation": best / B,
                         "parameters": sum(p.numel() for p in features.parameters())
                         + sum(p.numel() for p in spectra.parameters())})
            print(f"gsdnet B={B} N={N} D={D} {steps} steps: {best * 1e3:.2f} ms per batch", flush=True)
    return {"part": "gsdnet", "machine": _machine(args.device), "rows": rows}


def run_vectors(args) -> dict:
    """Seconds per graph of ``spectral_vectors`` sampling (issue 17's speed goal) beside the adjacency
    baseline on ``args.device``, at ``generate``'s default widths and the same steps: the eigenpair
    score network (width 64, 3 blocks) over ``(B, n, k)`` eigenvectors and ``k`` eigenvalues, then the
    edge decoder once; against the dense adjacency GNN (width 88, 3 layers) over ``n (n − 1) / 2``
    entries. Random weights (the cost of a step does not depend on training); both networks compiled
    by TorchScript, as ``generate`` samples them. Not part of the default plan; run it alone with
    ``benchmarks/gpu_checks.sh vectors --out DIR``. The adjacency rows need networkx (its module
    imports it); without it they are reported as skipped."""
    import torch

    from spectraldiff import VPSDE
    from spectraldiff.generation.edge_decoder import EigenpairEdgeDecoder
    from spectraldiff.generation.eigenpair_score import EigenpairScoreNet
    from spectraldiff.sampling import pc_sampler
    from spectraldiff.score_networks import NoiseToScore

    try:
        from spectraldiff.generation.adjacency import AdjacencyScoreNet, pair_mask
    except ImportError as error:  # networkx missing on the borrowed machine
        AdjacencyScoreNet, skipped = None, f"adjacency not timed: {error}"
    else:
        skipped = None
    timed = _timer(args.device)
    sde = VPSDE()
    device = args.device
    rows = []

    def compiled(module):
        try:
            return torch.jit.script(module)
        except Exception:  # noqa: BLE001 - speed only: time the module itself
            return module

    for case in args.cases.split(";"):
        dataset, n, B, k, decoder_layers = case.split(":")
        n, B, k, decoder_layers = int(n), int(B), int(k), int(decoder_layers)
        nodes = torch.ones(B, n, dtype=torch.bool, device=device)
        slots = torch.ones(B, k, dtype=torch.bool, device=device)
        score_net = compiled(EigenpairScoreNet(k, hidden_dim=64, num_layers=3).to(device).eval())
        decoder = compiled(EigenpairEdgeDecoder(k, hidden_dim=32, num_layers=decoder_layers).to(device).eval())
        masks = {"vectors": nodes[:, :, None] & slots[:, None, :], "values": slots}

        def vector_score(x, t, condition=None):
            eps_u, eps_l = score_net(x["vectors"], x["values"], t, nodes, slots)
            return {"vectors": sde.score_from_noise(eps_u, t), "values": sde.score_from_noise(eps_l, t)}

        def sample_vectors(steps: int):
            with torch.no_grad():
                x_T = {"vectors": sde.prior_sampling((B, n, k), device=device),
                       "values": sde.prior_sampling((B, k), device=device)}
                x = pc_sampler(sde, vector_score, x_T, steps=steps, mask=masks)
                return torch.sigmoid(decoder(x["vectors"], x["values"], nodes, slots))

        samplers = {"spectral_vectors": sample_vectors}
        if AdjacencyScoreNet is not None:
            adjacency_net = compiled(AdjacencyScoreNet(n, hidden_dim=88, num_layers=3).to(device).eval())
            pairs = pair_mask(nodes)
            adjacency_score = NoiseToScore(adjacency_net, sde, call=lambda net, x, t, c: net(x, t, nodes))

            def sample_adjacency(steps: int):
                with torch.no_grad():
                    x_T = sde.prior_sampling(pairs.shape, device=device)
                    return pc_sampler(sde, adjacency_score, x_T, steps=steps, mask=pairs)

            samplers["adjacency"] = sample_adjacency
        for steps in [int(s) for s in args.steps.split(",")]:
            best = {}
            for name, sample in samplers.items():
                times = timed(functools.partial(sample, steps), args.repeats)
                best[name] = min(times)
                rows.append({"dataset": dataset, "n": n, "graphs": B, "k": k, "decoder_layers": decoder_layers,
                             "model": name, "steps": steps, "seconds": times, "best_seconds": best[name],
                             "seconds_per_graph": best[name] / B})
                print(f"vectors {dataset} n={n} B={B} {name} {steps} steps: {best[name] / B * 1e3:.3f} ms per graph",
                      flush=True)
            if "adjacency" in best:
                print(f"vectors {dataset} n={n} B={B} {steps} steps: adjacency / spectral_vectors = "
                      f"{best['adjacency'] / best['spectral_vectors']:.2f}x", flush=True)
    return {"part": "vectors", "machine": _machine(device), "rows": rows, "skipped": skipped}


# ------------------------------------------------------------------------------ the plan runner
def run_plan(out: pathlib.Path, dry_run: bool, budget_s: float) -> int:
    out.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")])),
               SPECTRALDIFF_CACHE_DIR=str(out / "crossover"))
    started = time.perf_counter()
    results = []
    for part in plan(out, dry_run):
        left = budget_s - (time.perf_counter() - started)
        limit = min(part.budget_s, left)
        command = shlex.join(part.argv)
        print(f"[gpu_checks] {part.name} (budget {limit:.0f} s): {command}", flush=True)
        record = {"part": part.name, "command": command, "budget_s": part.budget_s, "folder": part.folder}
        if limit < 5:
            record.update(status="not run", reason=f"the total budget of {budget_s:.0f} s was spent")
            results.append(record)
            continue
        t0 = time.perf_counter()
        try:
            done = subprocess.run(part.argv, cwd=ROOT, env=env, timeout=limit, capture_output=True, text=True)
            status = "ok" if done.returncode == 0 else f"failed (exit {done.returncode})"
            tail = (done.stdout + done.stderr)[-3000:]
        except subprocess.TimeoutExpired as expired:
            status = f"timed out after {limit:.0f} s"
            tail = ((expired.stdout or b"") + (expired.stderr or b"")).decode(errors="replace")[-3000:] \
                if isinstance(expired.stdout, bytes) else str(expired.stdout or "")[-3000:]
        record.update(status=status, seconds=round(time.perf_counter() - t0, 2), output_tail=tail)
        print(f"[gpu_checks] {part.name}: {status} in {record['seconds']} s", flush=True)
        if status != "ok":
            print(tail, flush=True)
        results.append(record)
    summary = {"format": "spectraldiff.gpu_checks/1", "dry_run": dry_run, "created": time.strftime(
        "%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "budget_s": budget_s,
        "seconds": round(time.perf_counter() - started, 2), "parts": results,
        "goals": goals(out, DRY_KEY_POINT if dry_run else KEY_POINT)}
    (out / "summary.json").write_text(json.dumps(summary, indent=2) + "\n", encoding="utf8")
    (out / "summary.md").write_text(summary_markdown(summary, out), encoding="utf8")
    print((out / "summary.md").read_text(encoding="utf8"))
    return 0 if all(r["status"] == "ok" for r in results) else 1


def _eigh_rows(out: pathlib.Path) -> list[dict]:
    rows = []
    for path in sorted(out.glob("eigh-*/eigh_bench.json")):
        data = json.loads(path.read_text(encoding="utf8"))
        rows += [dict(r, source=path.parent.name, device_name=data.get("device", {}).get("name"))
                 for r in data.get("results", [])]
    return rows


def goals(out: pathlib.Path, key_point: dict) -> dict:
    """The two figures the issue asks for, from whatever eigh parts finished (``None`` if not timed)."""
    rows = [r for r in _eigh_rows(out) if r.get("status") == "ok"]

    def at(backend, **point):
        found = [r for r in rows if r["backend"] == backend and all(r[k] == v for k, v in point.items())]
        return found[0] if found else None

    raw, auto = at("torch.linalg.eigh", **key_point), at("auto", **key_point)
    speedup = None
    if raw and auto and auto.get("median_seconds"):
        speedup = {**key_point, "raw_median_s": raw["median_seconds"], "auto_median_s": auto["median_seconds"],
                   "auto_choice": auto.get("choice"), "speedup": raw["median_seconds"] / auto["median_seconds"],
                   "goal": 10.0, "device": auto.get("device_name")}
    small = [r for r in rows if r["dtype"] == "float32" and r["n"] <= ROOFLINE_MAX_N
             and r.get("peak_fraction") is not None and r["backend"] != "torch.linalg.eigh"]
    roofline = None
    if small:
        best = max(small, key=lambda r: r["peak_fraction"])
        roofline = {"best_peak_fraction": best["peak_fraction"], "backend": best["backend"], "n": best["n"],
                    "batch": best["batch"], "gflops": best.get("gflops"), "goal": 0.10,
                    "device": best.get("device_name")}
    return {"auto_vs_torch_linalg_eigh": speedup,
            f"float32_roofline_fraction_n_le_{ROOFLINE_MAX_N}": roofline}


def summary_markdown(summary: dict, out: pathlib.Path) -> str:
    lines = [f"# GPU checks{' (dry run on CPU: checks the plan, measures nothing)' if summary['dry_run'] else ''}",
             "", f"- created {summary['created']}, {summary['seconds']} s of a {summary['budget_s']:.0f} s budget",
             "", "| part | status | seconds | command |", "|---|---|---:|---|"]
    for r in summary["parts"]:
        lines.append(f"| {r['part']} | {r['status']} | {r.get('seconds', '')} | `{r['command']}` |")
    g = summary["goals"]
    speed = g["auto_vs_torch_linalg_eigh"]
    roof = g[f"float32_roofline_fraction_n_le_{ROOFLINE_MAX_N}"]
    lines += ["", "## Goals", ""]
    lines.append("- `auto` vs `torch.linalg.eigh` at n = 64, B = 4096, float32 (goal ≥ 10×): " + (
        f"{speed['speedup']:.2f}× at n = {speed['n']}, B = {speed['batch']}, {speed['dtype']} ({speed['raw_median_s'] * 1e3:.3f} ms → {speed['auto_median_s'] * 1e3:.3f} ms, "
        f"auto chose {speed['auto_choice']}, {speed['device']})" if speed else "not measured in this run"))
    lines.append(f"- best fraction of the fp32 peak at n ≤ {ROOFLINE_MAX_N} (goal ≥ 10 %): " + (
        f"{roof['best_peak_fraction']:.2%} ({roof['backend']}, n = {roof['n']}, B = {roof['batch']}, "
        f"{roof['gflops']:.3g} GFLOP/s, {roof['device']})" if roof else "not measured in this run"))
    for name, unit, key in (("sampling", "ms per graph", "seconds_per_graph"),
                            ("gsdnet", "ms per batch", "best_seconds")):
        path = out / name / f"{name}.json"
        if not path.exists():
            continue
        data = json.loads(path.read_text(encoding="utf8"))
        lines += ["", f"## {name} ({data['machine']['device_name']}, torch {data['machine']['torch']})", ""]
        for row in data["rows"]:
            what = ", ".join(f"{k} {v}" for k, v in row.items()
                             if k not in ("seconds", "best_seconds", "seconds_per_graph", "seconds_per_conversation"))
            lines.append(f"- {what}: {row[key] * 1e3:.3f} {unit}")
    lines += ["", "eigh tables: " + ", ".join(f"`{p.parent.name}/eigh_bench.md`"
                                               for p in sorted(out.glob('eigh-*/eigh_bench.md'))), ""]
    return "\n".join(lines)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command")
    for name, cases, steps in (("sampling", "community_small:20:20;community_small:20:1024;grid:361:2;grid:361:64",
                                "50,100"),
                               ("gsdnet", "16:110:1024,1024,1024;64:110:1024,1024,1024", "2,10"),
                               ("vectors", "community_small:20:64:4:2;community_small:20:256:4:2;sbm:160:16:8:2",
                                "50,100")):
        p = sub.add_parser(name)
        p.add_argument("--device", default="cuda")
        p.add_argument("--out", required=True)
        p.add_argument("--cases", default=cases, help="';'-separated cases; sampling dataset:n:B, gsdnet B:N:d,d,d "
                       "(conversations, utterances, feature width per modality), vectors "
                       "dataset:n:B:k:decoder_layers")
        p.add_argument("--steps", default=steps)
        p.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--out", default="runs/gpu_checks")
    parser.add_argument("--dry-run", action="store_true", help="the same plan on the CPU at tiny sizes")
    parser.add_argument("--budget-s", type=float, default=470.0, help="total wall-clock budget")
    args = parser.parse_args(argv)
    if args.command is None:
        return run_plan(pathlib.Path(args.out).resolve(), args.dry_run, args.budget_s)
    if str(ROOT) not in sys.path:  # a part started by hand on a machine where the package is not installed
        sys.path.insert(0, str(ROOT))
    result = {"sampling": run_sampling, "gsdnet": run_gsdnet, "vectors": run_vectors}[args.command](args)
    folder = pathlib.Path(args.out)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{args.command}.json").write_text(json.dumps(result, indent=2) + "\n", encoding="utf8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
