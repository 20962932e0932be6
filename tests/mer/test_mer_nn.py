"""The shared building blocks of mer.nn: positions, attention, sequence convolution, the score U-Net,
the DDPM schedule, the scaler and the task loss."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from mer.data import ConversationDataset, collate_conversations
from mer.data.collate import CLASSIFICATION_PAD_LABEL
from mer.nn import (
    ConditionalScoreUNet1d,
    CrossAttention,
    DDPMSchedule,
    FeatureScaler,
    SelfAttention,
    SequenceConv,
    feature_statistics,
    sinusoidal_positions,
    task_loss,
)


def test_sinusoidal_positions_follow_the_transformer_formula():
    pe = sinusoidal_positions(6, 5)
    pos, i = 4, 1
    assert pe[pos, 2 * i].item() == pytest.approx(math.sin(pos / 10000 ** (2 * i / 5)), abs=1e-6)
    assert pe[pos, 2 * i + 1].item() == pytest.approx(math.cos(pos / 10000 ** (2 * i / 5)), abs=1e-6)
    assert pe[pos, 4].item() == pytest.approx(math.sin(pos / 10000 ** (4 / 5)), abs=1e-6)


def test_sequence_conv_equals_a_same_padded_conv1d():
    torch.manual_seed(0)
    conv = SequenceConv(5, 7, 3)
    ref = torch.nn.Conv1d(5, 7, 3, padding=1)
    with torch.no_grad():
        # SequenceConv's weight is laid out (out, k·in) with shift k outermost.
        ref.weight.copy_(conv.linear.weight.view(7, 3, 5).permute(0, 2, 1))
        ref.bias.copy_(conv.linear.bias)
    x = torch.randn(2, 9, 5)
    assert torch.allclose(conv(x), ref(x.transpose(1, 2)).transpose(1, 2), atol=1e-5)


def test_score_unet_ignores_padding_and_handles_odd_lengths():
    torch.manual_seed(0)
    net = ConditionalScoreUNet1d(4, {"t": 3, "v": 2}, channels=(8, 16), token_dim=8, time_dim=8).eval()
    x = torch.randn(1, 5, 4)
    cond = {"t": torch.randn(1, 5, 3), "v": torch.randn(1, 5, 2)}
    cmask = torch.ones(1, 5, 2, dtype=torch.bool)
    t, std = torch.tensor([0.3]), torch.tensor([1.5])
    alone = net(x, t, std, torch.ones(1, 5, dtype=torch.bool), cond, cmask)
    pad = lambda a: torch.cat([a, torch.zeros(1, 3, *a.shape[2:], dtype=a.dtype)], dim=1)  # noqa: E731
    mask = torch.tensor([[True] * 5 + [False] * 3])
    padded = net(pad(x), t, std, mask, {k: pad(v) for k, v in cond.items()}, pad(cmask))
    # Pairs pooled at the coarse level include one padded slot at odd lengths, so compare loosely
    # only where pooling is identical (the first four utterances) and exactly zero on padding.
    assert torch.allclose(alone[:, :4], padded[:, :4], atol=1e-5)
    assert not padded[:, 5:].any()


def test_cross_attention_with_every_token_masked_still_gives_a_finite_update():
    torch.manual_seed(0)
    att = CrossAttention(8, 4, heads=2)
    h = torch.randn(2, 5, 8)
    out = att(h, sinusoidal_positions(5, 8), torch.randn(2, 3, 4), torch.zeros(2, 3, dtype=torch.bool))
    assert out.shape == h.shape and torch.isfinite(out).all()


def test_self_attention_of_real_utterances_ignores_padding():
    torch.manual_seed(0)
    att = SelfAttention(8, heads=2)
    h = torch.randn(1, 3, 8)
    padded = torch.cat([h, 100 * torch.randn(1, 2, 8)], dim=1)
    mask = torch.tensor([[True, True, True, False, False]])
    alone = att(h, torch.ones(1, 3, dtype=torch.bool))
    assert torch.allclose(att(padded, mask)[:, :3], alone, atol=1e-5)


def test_ddpm_posterior_of_the_true_x0_undoes_one_forward_step_in_mean():
    sched = DDPMSchedule.cosine(20)
    assert torch.all(sched.betas > 0) and torch.all(sched.betas <= 0.999)
    # μ̃_t(x_0, x_t) with x_t at its own mean √ᾱ_t x_0 must sit at the mean of x_{t−1}, √ᾱ_{t−1} x_0.
    x0 = torch.randn(3, 4, 2, dtype=torch.float64)
    t = torch.tensor([1, 7, 19])
    x_t = sched.q_sample(x0, t, torch.zeros_like(x0))
    mean, _ = sched.posterior(x0, x_t, t)
    expected = sched.alphas_cumprod_prev[t].sqrt()[:, None, None] * x0
    assert torch.allclose(mean, expected, atol=1e-12)


def test_respaced_schedule_keeps_the_last_step_and_original_time_indices():
    sched = DDPMSchedule.cosine(50).respaced(10)
    assert len(sched) == 10 and int(sched.timesteps[-1]) == 49 and int(sched.timesteps[0]) == 0


def _dataset():
    rng = np.random.default_rng(0)
    feats = {"t": [rng.normal(2.0, 3.0, size=(n, 3)) for n in (4, 5, 6)],
             "a": [rng.normal(-1.0, 0.5, size=(n, 2)) for n in (4, 5, 6)]}
    labels = [rng.uniform(-3, 3, size=n) for n in (4, 5, 6)]
    speakers = [np.zeros(n, dtype=int) for n in (4, 5, 6)]
    return ConversationDataset.from_arrays(feats, labels, speakers,
                                           splits={"train": [0, 1], "valid": [2], "test": []})


def test_scaler_statistics_are_those_of_the_training_split_and_padding_stays_zero():
    ds = _dataset()
    stats = feature_statistics(ds, ds.modalities)
    raw = np.concatenate([ds[0].features["t"], ds[1].features["t"]]).astype(np.float64)
    assert np.allclose(stats["t"][0], raw.mean(0)) and np.allclose(stats["t"][1], raw.std(0))
    scaler = FeatureScaler(ds.feature_dims).fit(ds)
    assert torch.equal(scaler.mean("t"), torch.from_numpy(stats["t"][0]).float())
    batch = scaler(collate_conversations(list(ds)))
    assert not batch.features["t"][~batch.utterance_mask].any()
    x = torch.randn(4, 3)
    assert torch.allclose(scaler.inverse("t", scaler.transform("t", x)), x, atol=1e-5)


def test_task_loss_averages_over_real_utterances_and_ignores_padded_labels():
    pred = torch.tensor([[1.0, 2.0, 9.0]])
    labels = torch.tensor([[0.0, 0.0, 0.0]])
    mask = torch.tensor([[True, True, False]])
    assert task_loss(pred, labels, mask, "regression").item() == pytest.approx(1.5)
    assert task_loss(pred, labels, mask, "regression", "mse").item() == pytest.approx(2.5)
    logits = torch.randn(1, 3, 4)
    cls = torch.tensor([[1, 3, CLASSIFICATION_PAD_LABEL]])
    expected = F.cross_entropy(logits[0, :2], cls[0, :2])
    assert task_loss(logits, cls, mask, "classification").item() == pytest.approx(expected.item())
