"""The Gaussian yardstick (issue 14): the oracle is exact, its floors are in the library's units, and
the documented defaults have the promised gap."""

import itertools
import time

import numpy as np
import pytest
import torch

from mer.data import (
    ConversationDataset,
    collate_conversations,
    fixed_patterns,
    load_dataset,
    pattern_masks,
    random_missing,
    sentiment_classes,
    split_masks,
)
from mer.data.gaussian import (
    GaussianConversationDataset,
    GaussianConversationModel,
    bayes_labels,
    gaussian_conversations,
    label_floor,
    oracle_posteriors,
    recovery_floor,
    training_std,
)
from mer.nn.scaler import FeatureScaler, feature_statistics
from mer.recoverers.base import recovery_error

Z_LIMIT = 4.0  # |z| of a Monte-Carlo check; 4 standard errors


def _z(per_conversation: list[float]) -> float:
    """``Σ D_c / sqrt(Σ D_c²)`` for zero-mean independent ``D_c`` (one per conversation)."""
    d = np.asarray(per_conversation, dtype=np.float64)
    return float(d.sum() / np.sqrt((d**2).sum()))


@pytest.fixture(scope="module")
def default_dataset():
    return gaussian_conversations(seed=0)


@pytest.fixture(scope="module")
def mc_dataset():
    """Many conversations of the default model, for Monte-Carlo checks (masks independent of data)."""
    return gaussian_conversations(seed=1, num_conversations=1500)


def _population_std(model):
    return {m: np.sqrt(model.prior_variance(m)) for m in model.modalities}


# --------------------------------------------------------------------------------- exactness
def _brute_force(model, conv, mask, info):
    """Dense Gaussian conditioning of every feature and label on the observed features, built from
    the definition (all speakers jointly; no cross-utterance covariance for ``info="utterance"``)."""
    n, k = conv.num_utterances, model.latent_dim
    turn = np.zeros(n, dtype=int)
    for t in range(n):
        turn[t] = np.sum(conv.speakers[:t] == conv.speakers[t])
    Cz = np.zeros((n * k, n * k))
    for t, u in itertools.product(range(n), range(n)):
        same = conv.speakers[t] == conv.speakers[u] if info == "conversation" else t == u
        if same:
            block = model.rho ** abs(turn[t] - turn[u]) * np.eye(k)
            Cz[t * k : (t + 1) * k, u * k : (u + 1) * k] = block
    rows, offsets, noise, values, observed = [], [], [], [], []
    for t in range(n):
        for c, m in enumerate(model.modalities):
            W = model.loadings[m]
            for j in range(W.shape[0]):
                r = np.zeros(n * k)
                r[t * k : (t + 1) * k] = W[j]
                rows.append(r)
                offsets.append(model.offsets[m][j])
                noise.append(model.noise[m][j] ** 2)
                values.append(conv.features[m][t, j])
                observed.append(mask[t, c])
    for t in range(n):  # labels last
        r = np.zeros(n * k)
        r[t * k : (t + 1) * k] = model.label_weights
        rows.append(r)
        offsets.append(0.0)
        noise.append(model.label_noise**2)
        values.append(np.nan)
        observed.append(False)
    A, b = np.array(rows), np.array(offsets)
    S = A @ Cz @ A.T + np.diag(noise)
    o = np.array(observed)
    K = S[~o][:, o] @ np.linalg.inv(S[o][:, o])
    mean = b[~o] + K @ (np.array(values)[o] - b[o])
    var = np.diag(S[~o][:, ~o] - K @ S[o][:, ~o])
    return mean, var, o


@pytest.mark.parametrize("info", ["utterance", "conversation"])
def test_posterior_equals_brute_force_joint_conditioning_over_all_speakers(info):
    model = GaussianConversationModel.build(
        latent_dim=3,
        modalities={"t": (4, 0.5, (1, 1, 0)), "a": (3, 0.7, (0, 1, 1)), "v": (2, 0.6)},
        rho=0.7,
        label_noise=0.3,
        world_seed=3,
    )
    rng = np.random.default_rng(0)
    speakers = np.array([0, 1, 0, 2, 1, 1, 0, 2, 0])
    conv = model.sample_conversation(rng, speakers, "c")
    mask = rng.random((9, 3)) < 0.5
    mask[~mask.any(axis=1), 0] = True
    post = model.posterior(conv, mask, info)
    mean, var, observed = _brute_force(model, conv, mask, info)

    got_mean, got_var = [], []
    for t in range(9):
        for c, m in enumerate(model.modalities):
            if not mask[t, c]:
                got_mean.extend(post.mean[m][t])
                got_var.extend(post.variance[m][t])
    got_mean.extend(post.label_mean)
    got_var.extend(post.label_variance)
    np.testing.assert_allclose(got_mean, mean, rtol=1e-8, atol=1e-8)
    np.testing.assert_allclose(got_var, var, rtol=1e-8, atol=1e-10)
    # Observed entries are returned as the data with zero variance.
    for c, m in enumerate(model.modalities):
        np.testing.assert_array_equal(post.mean[m][mask[:, c]], conv.features[m][mask[:, c]])
        assert not post.variance[m][mask[:, c]].any()


@pytest.mark.parametrize("info", ["utterance", "conversation"])
def test_monte_carlo_mse_of_posterior_mean_matches_stated_expected_mse(mc_dataset, info):
    model = mc_dataset.model
    masks = random_missing(mc_dataset, 0.3, seed=7)
    weight = {m: 1.0 / model.prior_variance(m) for m in model.modalities}
    posts = oracle_posteriors(mc_dataset, masks, split=None, info=info)
    poorer = "none" if info == "utterance" else "utterance"
    wrong = oracle_posteriors(mc_dataset, masks, split=None, info=poorer)
    d, d_wrong, sse, expected = [], [], 0.0, 0.0
    for conv, post, other in zip(mc_dataset, posts, wrong):
        err = var = var_other = 0.0
        for c, m in enumerate(model.modalities):
            miss = post.missing[:, c]
            err += float((((post.mean[m] - conv.features[m]) ** 2)[miss] * weight[m]).sum())
            var += float((post.variance[m][miss] * weight[m]).sum())
            var_other += float((other.variance[m][miss] * weight[m]).sum())
        d.append(err - var)
        d_wrong.append(err - var_other)
        sse, expected = sse + err, expected + var
    assert abs(_z(d)) < Z_LIMIT, (sse / expected, _z(d))
    # The check has power: the floor of the next-poorer information set is rejected.
    assert _z(d_wrong) < -Z_LIMIT


def test_bayes_label_prediction_mse_and_accuracy_match_their_expectations(mc_dataset):
    masks = random_missing(mc_dataset, 0.3, seed=8)
    posts = oracle_posteriors(mc_dataset, masks, split=None, info="conversation")
    d = [float(((p.label_mean - c.labels) ** 2 - p.label_variance).sum())
         for c, p in zip(mc_dataset, posts)]
    assert abs(_z(d)) < Z_LIMIT
    few = masks[:50]
    small = mc_dataset.subset(range(50))
    np.testing.assert_allclose(
        label_floor(small, few, split=None),
        np.mean(np.concatenate([p.label_variance for p in posts[:50]])),
    )
    pred = bayes_labels(small, few, split=None)
    np.testing.assert_array_equal(pred, np.concatenate([p.label_mean for p in posts[:50]]))

    view = mc_dataset.as_classification()
    probs = bayes_labels(view, masks, split=None)
    assert probs.shape == (view.num_utterances, 7)
    np.testing.assert_allclose(probs.sum(axis=1), 1.0, atol=1e-12)
    true = np.concatenate([c.labels for c in view])
    hit = (probs.argmax(axis=1) == true).astype(float) - probs.max(axis=1)
    bounds = np.cumsum([0] + [len(c) for c in view])
    assert abs(_z([hit[a:b].sum() for a, b in zip(bounds[:-1], bounds[1:])])) < Z_LIMIT


def test_ridge_on_1e5_samples_cannot_beat_utterance_floor_and_comes_within_one_percent():
    model = gaussian_conversations(num_conversations=1).model
    rng = np.random.default_rng(11)
    # Every utterance its own speaker: i.i.d. utterances with z ~ N(0, I).
    train = model.sample_conversation(rng, np.arange(100_000), "train")
    test = model.sample_conversation(rng, np.arange(200_000), "test")
    weight = {m: 1.0 / model.prior_variance(m) for m in model.modalities}
    one = model.sample_conversation(rng, np.arange(1), "one")
    for pattern in fixed_patterns(model.modalities)[:-1]:
        seen = [m for m in model.modalities if m in pattern]
        hidden = [m for m in model.modalities if m not in pattern]
        post = model.posterior(one, np.array([[m in pattern for m in model.modalities]]), "utterance")
        floor = sum(float((post.variance[m][0] * weight[m]).sum()) for m in hidden) / sum(
            model.feature_dims[m] for m in hidden
        )

        def design(conv):
            x = np.concatenate([conv.features[m] for m in seen], axis=1).astype(np.float64)
            return np.concatenate([x, np.ones((len(x), 1))], axis=1)

        def target(conv):
            return np.concatenate([conv.features[m] for m in hidden], axis=1).astype(np.float64)

        X, Y = design(train), target(train)
        coef = np.linalg.solve(X.T @ X + 1.0 * np.eye(X.shape[1]), X.T @ Y)
        w = np.concatenate([weight[m] for m in hidden])
        per_utt = (((design(test) @ coef - target(test)) ** 2) * w).mean(axis=1)
        mse, se = per_utt.mean(), per_utt.std() / np.sqrt(len(per_utt))
        assert mse >= floor - Z_LIMIT * se, (pattern, mse, floor)
        assert mse <= 1.01 * floor, (pattern, mse, floor)


def test_conversation_floor_never_above_utterance_floor_entrywise(default_dataset):
    ds = default_dataset.subset(range(100), split_name="test")
    trials = [random_missing(ds, r, seed=1) for r in (0.1, 0.3, 0.6)]
    trials += [pattern_masks(ds, p) for p in fixed_patterns(ds.modalities)[:-1]]
    for masks in trials:
        prior, a, b = (oracle_posteriors(ds, masks, info=i)
                       for i in ("none", "utterance", "conversation"))
        for pn, pa, pb in zip(prior, a, b):
            for m in ds.modalities:
                assert np.all(pb.variance[m] <= pa.variance[m] + 1e-12)
                assert np.all(pa.variance[m] <= pn.variance[m] + 1e-12)
            assert np.all(pb.label_variance <= pa.label_variance + 1e-12)
            # Context helps somewhere in every conversation with a dropped entry.
            if pb.missing.any():
                assert any(np.any(pb.variance[m] < pa.variance[m] - 1e-6) for m in ds.modalities)


def test_with_rho_zero_context_is_useless_and_the_floors_coincide():
    ds = gaussian_conversations(seed=2, num_conversations=30, rho=0.0)
    masks = random_missing(ds, 0.5, seed=0)
    a = oracle_posteriors(ds, masks, split=None, info="utterance")
    b = oracle_posteriors(ds, masks, split=None, info="conversation")
    for pa, pb in zip(a, b):
        for m in ds.modalities:
            np.testing.assert_allclose(pb.mean[m], pa.mean[m], atol=1e-10)
            np.testing.assert_allclose(pb.variance[m], pa.variance[m], atol=1e-10)
    assert recovery_floor(ds, masks, None, "conversation") == pytest.approx(
        recovery_floor(ds, masks, None, "utterance"), rel=1e-12
    )


# ------------------------------------------------------------------------------------ units
def test_floors_use_the_training_split_standardisation_of_feature_scaler(default_dataset):
    stats = feature_statistics(default_dataset, default_dataset.modalities)
    std = training_std(default_dataset)
    for m in default_dataset.modalities:
        np.testing.assert_array_equal(std[m], stats[m][1])
    masks = split_masks(default_dataset, "test", 0.3, seed=0)
    scaler = FeatureScaler(default_dataset.feature_dims).fit(default_dataset)
    for info in ("utterance", "conversation"):
        assert recovery_floor(default_dataset, masks, "test", info, scaler=scaler) == pytest.approx(
            recovery_floor(default_dataset, masks, "test", info), rel=1e-6
        )
    # With the population std the prior "floor" is exactly 1: every feature's variance.
    pop = _population_std(default_dataset.model)
    prior = recovery_floor(default_dataset, masks, "test", "none", scaler=pop)
    assert prior == pytest.approx(1.0, abs=1e-12)


def test_oracle_fill_scored_by_recovery_error_matches_floor_and_its_averaging(default_dataset):
    ds = default_dataset
    masks = split_masks(ds, "test", 0.3, seed=0)
    test = ds.split("test")
    scaler = FeatureScaler(ds.feature_dims).fit(ds)
    std = training_std(ds)
    batch = scaler(collate_conversations(list(zip(test, masks))))
    for info in ("utterance", "conversation"):
        posts = oracle_posteriors(ds, masks, "test", info)
        filled = {}
        for m in ds.modalities:
            x = torch.zeros_like(batch.features[m])
            for b, p in enumerate(posts):
                x[b, : len(p.mean[m])] = scaler.transform(m, torch.from_numpy(p.mean[m]).float())
            filled[m] = x
        sse, count = recovery_error(batch, batch.availability, filled)
        library = float(sse / count)
        # Our pooled average over dropped scalars, in numpy.
        num = den = 0.0
        d = []
        for conv, p in zip(test, posts):
            e = v = 0.0
            for c, m in enumerate(ds.modalities):
                miss = p.missing[:, c]
                e += float(((p.mean[m] - conv.features[m]) ** 2 / std[m] ** 2)[miss].sum())
                v += float((p.variance[m] / std[m] ** 2)[miss].sum())
                den += miss.sum() * ds.feature_dims[m]
            num += e
            d.append(e - v)
        assert library == pytest.approx(num / den, rel=1e-4)
        assert abs(_z(d)) < Z_LIMIT
        assert float(count) == den


def test_mean_fill_mse_equals_prior_variance_about_one(mc_dataset):
    ds = mc_dataset
    masks = split_masks(ds, "test", 0.3, seed=0)
    stats = feature_statistics(ds, ds.modalities)
    floor = recovery_floor(ds, masks, "test", "none")
    num = den = 0.0
    for conv, mask in zip(ds.split("test"), masks):
        for c, m in enumerate(ds.modalities):
            miss = ~mask[:, c]
            mu, sd = stats[m]
            num += float((((conv.features[m][miss] - mu) / sd) ** 2).sum())
            den += miss.sum() * ds.feature_dims[m]
    assert num / den == pytest.approx(floor, rel=0.03)
    assert floor == pytest.approx(1.0, abs=0.03)


# ------------------------------------------------------------------------------- the dataset
def test_loads_by_name_is_deterministic_and_speakers_take_turns():
    a = load_dataset("gaussian", seed=4, num_conversations=25)
    b = gaussian_conversations(seed=4, num_conversations=25)
    c = gaussian_conversations(seed=5, num_conversations=25)
    assert isinstance(a, GaussianConversationDataset) and a.splits == b.splits
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x.speakers, y.speakers)
        np.testing.assert_array_equal(x.labels, y.labels)
        for m in a.modalities:
            np.testing.assert_array_equal(x.features[m], y.features[m])
    assert not np.array_equal(a[0].features["t"][:1], c[0].features["t"][:1])
    # The model is fixed by world_seed, not by the conversation seed.
    np.testing.assert_array_equal(a.model.loadings["t"], c.model.loadings["t"])
    for conv in a:
        assert len(np.unique(conv.speakers)) >= 2
        assert np.any(conv.speakers[1:] != conv.speakers[:-1])


def test_documented_defaults_size_speed_and_labels():
    start = time.perf_counter()
    ds = gaussian_conversations(seed=0)
    elapsed = time.perf_counter() - start
    assert elapsed < 3.0  # < 1 s on an idle core; slack for shared CI machines
    assert len(ds) == 300 and ds.modalities == ["t", "a", "v"]
    assert ds.feature_dims == {"t": 32, "a": 24, "v": 16}
    assert 3800 <= ds.num_utterances <= 4600
    assert ds.model.rho == 0.9 and ds.model.latent_dim == 6
    y = np.concatenate([c.labels for c in ds])
    assert ds.model.label_std == pytest.approx(1.0)
    assert y.std() == pytest.approx(1.0, abs=0.1)
    assert np.mean(np.abs(y) > 3) < 0.01  # not clipped, and rarely outside [-3, 3]
    assert np.bincount(sentiment_classes(y), minlength=7).min() > 0


def test_default_gap_between_floors_is_at_least_a_quarter_at_mr_03(default_dataset):
    masks = split_masks(default_dataset, "test", 0.3, seed=0)
    a = recovery_floor(default_dataset, masks, "test", "utterance")
    b = recovery_floor(default_dataset, masks, "test", "conversation")
    assert (a - b) / a >= 0.25


def test_default_modalities_are_not_redundant():
    """No single modality pins down another: from one observed modality, the utterance floor of each
    missing one stays above half its variance."""
    model = gaussian_conversations(num_conversations=1).model
    one = model.sample_conversation(np.random.default_rng(0), np.arange(1), "one")
    for c, m in enumerate(model.modalities):
        mask = np.zeros((1, 3), dtype=bool)
        mask[0, c] = True
        post = model.posterior(one, mask, "utterance")
        for other in model.modalities:
            if other != m:
                share = post.variance[other][0] / model.prior_variance(other)
                assert share.mean() > 0.5, (m, other, share.mean())


def test_model_travels_with_views_but_not_with_standardisation(default_dataset):
    assert default_dataset.split("test").model is default_dataset.model
    view = default_dataset.as_classification()
    assert isinstance(view, GaussianConversationDataset) and view.task == "classification"
    std = default_dataset.standardized()
    assert type(std) is ConversationDataset
    masks = split_masks(default_dataset, "test", 0.3, seed=0)
    with pytest.raises(ValueError, match="carries no Gaussian model"):
        recovery_floor(std, masks)


def test_classification_view_matches_sentiment_classes():
    reg = gaussian_conversations(seed=3, num_conversations=20)
    cls = gaussian_conversations(seed=3, num_conversations=20, task="classification")
    for r, c in zip(reg, cls):
        np.testing.assert_array_equal(c.labels, sentiment_classes(r.labels))


def test_errors_name_the_problem(default_dataset):
    with pytest.raises(ValueError, match="rho"):
        gaussian_conversations(num_conversations=2, rho=1.0)
    with pytest.raises(ValueError, match="num_speakers"):
        gaussian_conversations(num_conversations=2, num_speakers=(1, 2))
    with pytest.raises(ValueError, match="info"):
        recovery_floor(default_dataset, split_masks(default_dataset, "test", 0.3), info="speaker")
    conv = default_dataset[0]
    with pytest.raises(ValueError, match="mask has shape"):
        default_dataset.model.posterior(conv, np.ones((len(conv), 2), dtype=bool))
    with pytest.raises(ValueError, match="masks for"):
        recovery_floor(default_dataset, [np.ones((3, 3), dtype=bool)])


def test_yardstick_doc_example_runs_and_states_its_floors():
    import pathlib
    import re

    doc = pathlib.Path(__file__).resolve().parents[2] / "docs" / "yardstick.md"
    text = doc.read_text(encoding="utf8")
    block = re.findall(r"```python\n(.*?)```", text, flags=re.S)[0]
    scope: dict = {}
    exec(compile(block, str(doc), "exec"), scope)
    for name in ("floor_a", "floor_b", "prior"):
        stated = re.search(rf"{name} = .*# ([0-9.]+)", block).group(1)
        assert f"{scope[name]:.3f}" == stated, name
    assert set(scope["bayes"]) >= {"acc2_has0", "mae", "corr"}
