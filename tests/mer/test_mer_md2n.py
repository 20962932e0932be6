"""MD2N: the transfer schedule Φ keeps the VP marginals; the transfer stage acts only on (t1, t2];
training lowers the loss; sampling is seeded; the one-stage variant works; settings are validated."""

import dataclasses

import pytest
import torch

import mer
import spectraldiff as sd
from mer.data import collate_conversations, random_missing, synthetic_conversations
from mer.recoverers import FeatureScaler, build_recoverer
from mer.recoverers.md2n import TransferSchedule

T, T1, T2 = 1000, 200, 800
CHECKPOINTS = (T1, 500, T2, T)
FAST = {"hidden_dim": 16, "num_layers": 1, "sampling_steps": 4, "train_sampling_steps": 2}


@pytest.fixture(scope="module")
def schedule():
    return TransferSchedule(sd.VPSDE(), T, T1, T2, transfer=True)


@pytest.fixture(scope="module")
def setting():
    ds = synthetic_conversations(seed=0, num_conversations=24)
    masks = random_missing(ds, 0.4, seed=1)
    batch = collate_conversations([ds[i] for i in range(12)], masks=masks[:12])
    return ds, FeatureScaler(ds.feature_dims).fit(ds)(batch)


def simulate(schedule, x0, y0, shift, samples=4096, seed=0):
    """Run the per-step forward chain ``x_i = √α_i x_{i−1} + shift(i) (y0 − x0) + √β_i z`` from
    ``x_0 = x0`` for ``samples`` draws; returns ``{i: (samples, d)}`` at :data:`CHECKPOINTS`."""
    gen = torch.Generator().manual_seed(seed)
    a, _, b = (c.tolist() for c in schedule.step(torch.arange(1, T + 1)))
    x = x0.expand(samples, -1).clone()
    out = {}
    for i in range(1, T + 1):
        noise = torch.randn(x.shape, generator=gen, dtype=x.dtype)
        x = a[i - 1] * x + shift(i) * (y0 - x0) + b[i - 1] ** 0.5 * noise
        if i in CHECKPOINTS:
            out[i] = x.clone()
    return out


def standardised_errors(schedule, x0, y0, states):
    """Per checkpoint: mean and variance of ``(x_i − μ_i) / σ_i`` pooled over samples and entries,
    with ``μ_i, σ_i`` the closed-form marginal (should be 0 and 1)."""
    out = {}
    for i, x in states.items():
        mean, std = schedule.marginal(x0[None], y0[None], torch.tensor([i]))
        z = (x - mean) / std
        out[i] = (float(z.mean()), float(z.var()))
    return out


X0 = torch.linspace(-3.0, 1.0, 8, dtype=torch.float64)
Y0 = X0 + 4.0
# 4096 × 8 pooled standard normals: the standard error of the mean is 0.0055 and of the variance 0.008.
MEAN_TOL, VAR_TOL = 0.03, 0.05


def test_forward_chain_with_the_derived_phi_has_the_closed_form_marginals(schedule):
    shift = schedule.step(torch.arange(1, T + 1))[1].tolist()
    states = simulate(schedule, X0, Y0, lambda i: shift[i - 1])
    for i, (mean, var) in standardised_errors(schedule, X0, Y0, states).items():
        assert abs(mean) < MEAN_TOL, f"step {i}: standardised mean {mean}"
        assert abs(var - 1.0) < VAR_TOL, f"step {i}: standardised variance {var}"
    # At t2 and T the marginal is exactly the VP marginal of the end modality y0.
    for i in (T2, T):
        sqrt_ab, std = sd.VPSDE().marginal_prob(torch.ones(1, dtype=torch.float64), torch.tensor([i / T]))
        z = (states[i] - sqrt_ab * Y0) / std
        assert abs(float(z.mean())) < MEAN_TOL and abs(float(z.var()) - 1.0) < VAR_TOL


def test_a_naive_phi_increment_without_the_decay_correction_misses_the_marginals(schedule):
    # Adding Φ_i − Φ_{i−1} per step ignores that earlier shifts decay by √α: the mean lags behind.
    phi = schedule.phi.tolist()
    states = simulate(schedule, X0, Y0, lambda i: phi[i] - phi[i - 1])
    errors = standardised_errors(schedule, X0, Y0, states)
    assert abs(errors[T1][0]) < MEAN_TOL  # before the transfer stage both chains coincide
    for i in (500, T2, T):
        assert abs(errors[i][0]) > 3 * MEAN_TOL, f"step {i}: naive chain looks right ({errors[i][0]})"


def test_per_step_kernel_reproduces_the_marginal_moments_exactly(schedule):
    # Deterministic moment recursion: mean_i = a mean_{i−1} + k d, var_i = a² var_{i−1} + b.
    i = torch.arange(1, T + 1)
    a, k, b = schedule.step(i)
    mean, var = torch.tensor(0.0, dtype=torch.float64), torch.tensor(0.0, dtype=torch.float64)
    for s in range(T):
        mean, var = a[s] * mean + k[s], a[s] ** 2 * var + b[s]
        closed_mean, closed_std = schedule.marginal(torch.zeros(1, 1, dtype=torch.float64),
                                                    torch.ones(1, 1, dtype=torch.float64), i[s:s + 1])
        assert abs(float(mean - closed_mean)) < 1e-12 and abs(float(var - closed_std**2)) < 1e-12


@pytest.mark.parametrize("i,j", [(1000, 700), (800, 500), (600, 150), (250, 0)])
def test_strided_posterior_maps_the_marginal_at_i_to_the_marginal_at_j(schedule, i, j):
    gen = torch.Generator().manual_seed(1)
    n = 32768
    x0, y0 = torch.full((n, 1), -2.0, dtype=torch.float64), torch.full((n, 1), 2.0, dtype=torch.float64)
    ii, jj = torch.full((n,), i), torch.full((n,), j)
    mean_i, std_i = schedule.marginal(x0, y0, ii)
    x_i = mean_i + std_i[:, None] * torch.randn(n, 1, generator=gen, dtype=torch.float64)
    mean, std = schedule.posterior(x_i, x0, y0, ii, jj)
    x_j = mean + std[:, None] * torch.randn(n, 1, generator=gen, dtype=torch.float64)
    target_mean, target_std = schedule.marginal(x0[:1], y0[:1], jj[:1])
    if j == 0:
        assert torch.allclose(x_j, x0)
        return
    z = (x_j - target_mean) / target_std
    assert abs(float(z.mean())) < MEAN_TOL and abs(float(z.var()) - 1.0) < VAR_TOL


def test_the_transfer_stage_changes_the_forward_process_only_between_t1_and_t2(schedule):
    plain = TransferSchedule(sd.VPSDE(), T, T1, T2, transfer=False)
    i = torch.arange(1, T + 1)
    a, k, b = schedule.step(i)
    a0, k0, b0 = plain.step(i)
    assert torch.equal(a, a0) and torch.equal(b, b0), "the transfer must not touch the VP kernel"
    inside = (i > T1) & (i <= T2)
    assert bool((k[inside] > 0).all()) and not k[~inside].any() and not k0.any()

    x0, y0 = torch.zeros(T + 1, 1, dtype=torch.float64), torch.ones(T + 1, 1, dtype=torch.float64)
    steps = torch.arange(T + 1)
    with_transfer, std = schedule.marginal(x0, y0, steps)
    without, std0 = plain.marginal(x0, y0, steps)
    assert torch.equal(std, std0)
    before, during = steps <= T1, (steps > T1) & (steps <= T2)
    assert torch.equal(with_transfer[before], without[before])
    assert bool((with_transfer[during] != without[during]).all())
    after = steps >= T2
    assert torch.allclose(with_transfer[after, 0], schedule.sqrt_alpha_bar[after], rtol=1e-12, atol=0)


def test_a_few_epochs_of_training_lower_the_training_loss():
    ds = synthetic_conversations(seed=0, num_conversations=40)
    config = {"model": {"dim": 16}, "train": {"epochs": 6, "batch_size": 8, "lr": 3e-3, "patience": 0}}
    model = mer.train(ds, recoverer="md2n", masks=0.4, config=config, seed=3, recoverer_kwargs=FAST)
    history = model.history
    assert len(history) == 6
    for key, factor in (("train_loss", 0.8), ("train_diffusion", 0.9), ("train_rec", 0.9)):
        first, last = history[0][key], sum(h[key] for h in history[-2:]) / 2
        assert last < factor * first, f"{key}: {first:.3f} → {last:.3f}"


def test_recovery_and_losses_are_deterministic_under_a_fixed_seed(setting):
    ds, batch = setting

    def run(seed):
        torch.manual_seed(0)
        rec = build_recoverer("md2n", ds.modalities, ds.feature_dims, **FAST)
        torch.manual_seed(seed)
        _, losses = rec.train().training_step(batch, batch.availability)
        torch.manual_seed(seed)
        with torch.no_grad():
            out = rec.eval().recover(batch, batch.availability)
        return out, losses

    (a, la), (b, lb), (c, _) = run(5), run(5), run(6)
    for m in ds.modalities:
        assert torch.equal(a.features[m], b.features[m])
    assert all(torch.equal(la[k], lb[k]) for k in la)
    missing = ~batch.availability[:, :, 0] & batch.utterance_mask
    assert not torch.equal(a.features["t"][missing], c.features["t"][missing]), "sampling uses no noise"


@pytest.mark.parametrize("transfer", [True, False])
def test_both_variants_fill_only_missing_entries_and_train(setting, transfer):
    ds, batch = setting
    torch.manual_seed(0)
    rec = build_recoverer("md2n", ds.modalities, ds.feature_dims, transfer=transfer, **FAST)
    assert int(rec.grid(4)[0]) == (T2 if transfer else T) and int(rec.grid(4)[-1]) == 0
    with torch.no_grad():
        out = rec.eval().recover(batch, batch.availability)
    for k, m in enumerate(ds.modalities):
        seen = batch.availability[:, :, k]
        missing = ~seen & batch.utterance_mask
        assert torch.equal(out.features[m][seen], batch.features[m][seen])
        assert torch.isfinite(out.features[m][missing]).all() and bool(out.features[m][missing].ne(0).any())
    recovery, losses = rec.train().training_step(batch, batch.availability)
    assert set(losses) == {"diffusion", "rec", "align"}
    assert all(torch.isfinite(v) and float(v) > 0 for v in losses.values())
    sum(losses.values()).backward()
    for part in ("denoisers", "decoders", "project"):
        grads = [p.grad for p in getattr(rec, part).parameters() if p.grad is not None]
        assert grads and any(float(g.abs().sum()) > 0 for g in grads), part


@pytest.mark.parametrize("kwargs,match", [
    ({"t1": 0}, "0 < t1 < t2 < num_steps"),
    ({"t1": 800, "t2": 800}, "0 < t1 < t2 < num_steps"),
    ({"t2": 1000}, "0 < t1 < t2 < num_steps"),
    ({"t1": 2.5}, "integers"),
    ({"sampling_steps": 801, "time_range": "full"}, "sampling_steps must lie in \\[1, 800\\]"),
    ({"sampling_steps": 602}, "sampling_steps must lie in \\[1, 601\\]"),
    ({"objective": "all"}, "objective must be one of"),
    ({"time_range": "t1"}, "time_range must be one of"),
    ({"decoder": 0}, "decoder must be True or False"),
    ({"train_sampling_steps": 0}, "train_sampling_steps"),
    ({"transfer": "yes"}, "transfer must be True or False"),
    ({"beta_min": 30.0}, "beta_min < beta_max"),
])
def test_bad_settings_are_rejected_with_a_message_naming_them(kwargs, match):
    with pytest.raises(ValueError, match=match):
        build_recoverer("md2n", ["t", "a"], {"t": 2, "a": 3}, **kwargs)


# ------------------------------------------------------------------ issue 16: the paper's switches
def _md2n(ds, seed=0, **kwargs):
    torch.manual_seed(seed)
    return build_recoverer("md2n", ds.modalities, ds.feature_dims, **{**FAST, **kwargs})


@pytest.mark.parametrize("time_range, low, high", [("paper", T1 + 1, T), ("full", 1, T2)])
def test_the_time_range_sets_the_training_steps_and_where_sampling_ends(setting, time_range, low, high):
    ds, batch = setting
    rec = _md2n(ds, time_range=time_range)
    torch.manual_seed(0)
    steps = rec.training_steps(20000)
    assert int(steps.min()) == low and int(steps.max()) == high
    grid = rec.grid(4).tolist()
    assert grid[0] == T2 and grid[-1] == 0
    assert grid[-2] == (T1 if time_range == "paper" else round(T2 / 4))
    # The diffusion loss draws its steps from training_steps and nowhere else.
    drawn = []
    original = rec.training_steps
    rec.training_steps = lambda n, device=None: drawn.append(original(n, device)) or drawn[-1]
    rec.train().training_step(batch, batch.availability)
    assert drawn and all(low <= int(i.min()) and int(i.max()) <= high for i in drawn)


def test_the_time_range_changes_nothing_but_the_steps(setting):
    ds, _ = setting
    paper, full = _md2n(ds), _md2n(ds, time_range="full")
    assert all(torch.equal(p, q) for p, q in zip(paper.parameters(), full.parameters()))


def _complete(batch):
    return batch.utterance_mask[:, :, None].expand_as(batch.availability).clone()


def test_the_papers_objective_trains_on_complete_data_and_the_dropped_one_does_not(setting):
    ds, batch = setting
    complete = _complete(batch)
    paper = _md2n(ds).train()
    _, losses = paper.training_step(batch, complete)
    assert set(losses) == {"diffusion", "rec", "align"}
    assert all(float(v) > 0 for v in losses.values())
    sum(losses.values()).backward()
    for part in ("denoisers", "decoders", "project", "encode"):
        assert any(p.grad is not None and float(p.grad.abs().sum()) > 0
                   for p in getattr(paper, part).parameters()), part
    for m in ds.modalities:  # duplex: every modality is a target
        assert paper.denoisers[m].inp.weight.grad is not None
    _, losses = _md2n(ds, objective="dropped").train().training_step(batch, complete)
    assert all(float(v) == 0 for v in losses.values())


def test_the_objectives_train_on_their_entries(setting):
    ds, batch = setting
    for objective in ("paper", "dropped"):
        rec = _md2n(ds, objective=objective)
        contexts = rec._contexts(batch, batch.availability, list(ds.modalities))
        entries = rec.loss_entries(batch, batch.availability, contexts)
        missing = batch.missing_entries(batch.availability)
        for k, m in enumerate(ds.modalities):
            if objective == "dropped":
                assert torch.equal(entries[m], missing[:, :, k])
            else:
                partner = (batch.observed_entries(batch.availability).sum(-1)
                           - batch.observed_entries(batch.availability)[:, :, k].long()) > 0
                assert torch.equal(entries[m], partner & batch.utterance_mask)
                assert bool((entries[m] & ~missing[:, :, k]).any()), "observed entries train too"


def _recover_with_own_modality_changed(rec, batch, k):
    m = batch.modalities[k]
    outs = []
    for shift in (0.0, 2.0):
        features = dict(batch.features)
        features[m] = batch.features[m] + shift * batch.availability[:, :, k, None]
        with torch.no_grad():
            torch.manual_seed(9)
            outs.append(rec.recover(dataclasses.replace(batch, features=features), batch.availability).features[m])
    miss = batch.missing_entries(batch.availability)[:, :, k]
    return outs[0][miss], outs[1][miss]


def test_only_the_dropped_objective_reads_the_target_modality_elsewhere_in_the_conversation(setting):
    ds, batch = setting
    a, b = _recover_with_own_modality_changed(_md2n(ds).eval(), batch, 0)
    assert torch.allclose(a, b, atol=1e-6)
    a, b = _recover_with_own_modality_changed(_md2n(ds, objective="dropped").eval(), batch, 0)
    assert not torch.allclose(a, b, atol=1e-4)


def test_the_training_sampler_defaults_to_the_inference_sampler(setting):
    ds, _ = setting
    assert _md2n(ds, sampling_steps=7, train_sampling_steps=None).train_sampling_steps == 7
    assert build_recoverer("md2n", ds.modalities, ds.feature_dims).train_sampling_steps == 10


def test_without_the_decoder_the_sample_is_the_recovery_and_rec_is_gone(setting):
    ds, batch = setting
    rec = _md2n(ds, decoder=False)
    assert not list(rec.decoders.parameters())
    assert {n for n, _ in rec.named_parameters()} == {
        n for n, _ in _md2n(ds).named_parameters() if not n.startswith("decoders.")}
    with torch.no_grad():
        out = rec.eval().recover(batch, batch.availability)
    missing = batch.missing_entries(batch.availability)
    for k, m in enumerate(ds.modalities):
        assert torch.equal(out.features[m][missing[:, :, k]], out.extras[f"sample_{m}"][missing[:, :, k]])
    _, losses = rec.train().training_step(batch, batch.availability)
    assert set(losses) == {"diffusion", "align"}


def test_without_encoders_the_source_reads_padded_raw_features(setting):
    ds, batch = setting
    rec = _md2n(ds, encoders=False)
    assert not list(rec.encode.parameters())
    widest = max(ds.feature_dims.values())
    assert all(p.in_features == widest for p in rec.project.values())
    assert {n for n, _ in rec.named_parameters() if not n.startswith(("encode.", "project."))} == {
        n for n, _ in _md2n(ds).named_parameters() if not n.startswith(("encode.", "project."))}
    _, losses = rec.train().training_step(batch, batch.availability)
    assert all(torch.isfinite(v) and float(v) > 0 for v in losses.values())


def test_the_complete_training_protocol_trains_md2n_and_keeps_test_masks(setting):
    from mer.data.protocol import MaskPlan, MissingProtocol

    ds = synthetic_conversations(seed=0, num_conversations=30)
    protocol = MissingProtocol.parse(0.4)
    plan, usual = MaskPlan(ds, protocol, 1, "complete"), MaskPlan(ds, protocol, 1)
    assert all(mask.all() for epoch in (0, 3) for mask in plan.train(epoch))
    assert not all(mask.all() for mask in usual.train(0))
    for split in ("valid", "test"):
        assert all((a == b).all() for a, b in zip(plan.split(split), usual.split(split)))
    config = {"model": {"dim": 16}, "train": {"epochs": 2, "batch_size": 8, "patience": 0,
                                              "train_masks": "complete"}}
    model = mer.train(ds, recoverer="md2n", masks=0.4, config=config, seed=3, recoverer_kwargs=FAST)
    assert all(h["train_diffusion"] > 0 and h["train_rec"] > 0 for h in model.history)
    assert model.evaluate(ds, "test")["recovery_mse"] > 0
