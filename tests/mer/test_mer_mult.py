"""MulT fusion backbone (mer.models.mult)."""

import pytest
import torch

from mer.models.mult import MulTFusion, TransformerStack

DIMS = {"text": 6, "audio": 5, "video": 7, "extra": 3}
DIM = 8


def _fusion(modalities, pool="last", kernel_sizes=3, **kwargs):
    torch.manual_seed(0)
    kwargs = {"heads": 2, "layers": 2, "self_layers": 1, **kwargs}
    return MulTFusion(modalities, DIMS, DIM, kernel_sizes, pool=pool, **kwargs).eval()


def _inputs(modalities, lengths, T=None, seed=1):
    g = torch.Generator().manual_seed(seed)
    T = T or max(lengths)
    mask = torch.arange(T)[None, :] < torch.tensor(lengths)[:, None]
    x = {m: torch.randn(len(lengths), T, DIMS[m], generator=g) for m in modalities}
    return x, mask


def _block(out, i, M):
    """Target ``i``'s block of the output."""
    w = (M - 1) * DIM
    return out[:, i * w:(i + 1) * w]


@pytest.mark.parametrize("M", [2, 3, 4])
def test_output_has_width_M_times_M_minus_1_times_dim(M):
    modalities = list(DIMS)[:M]
    fusion = _fusion(modalities)
    x, mask = _inputs(modalities, [5, 3, 1])
    out = fusion(x, mask)
    assert fusion.out_dim == M * (M - 1) * DIM
    assert out.shape == (3, M * (M - 1) * DIM)
    assert torch.isfinite(out).all()


@pytest.mark.parametrize("pool", ["last", "mean"])
def test_extra_padded_steps_of_garbage_leave_the_output_unchanged(pool):
    modalities = ["text", "audio", "video"]
    fusion = _fusion(modalities, pool, kernel_sizes={"text": 3, "audio": 5, "video": 1})
    x, mask = _inputs(modalities, [6, 4, 2])
    g = torch.Generator().manual_seed(7)
    x_long = {m: torch.cat([v, 100 * torch.randn(3, 4, v.shape[2], generator=g)], dim=1)
              for m, v in x.items()}
    # Garbage also overwrites the existing padding of the shorter rows.
    for v in x_long.values():
        v[1, 4:] = 50 * torch.randn(6, v.shape[2], generator=g)
    x_long["audio"][2, 2:] = float("nan")
    mask_long = torch.cat([mask, torch.zeros(3, 4, dtype=torch.bool)], dim=1)
    with torch.no_grad():
        torch.testing.assert_close(fusion(x_long, mask_long), fusion(x, mask), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("pool", ["last", "mean"])
def test_row_0_does_not_depend_on_row_1(pool):
    modalities = ["text", "audio", "video"]
    fusion = _fusion(modalities, pool)
    x, mask = _inputs(modalities, [5, 4])
    y = {m: v.clone() for m, v in x.items()}
    for v in y.values():
        v[1] = torch.randn_like(v[1])
    with torch.no_grad():
        a, b = fusion(x, mask), fusion(y, mask)
    torch.testing.assert_close(a[0], b[0], atol=1e-6, rtol=1e-6)
    assert not torch.allclose(a[1], b[1], atol=1e-3)


def test_padded_source_keys_get_no_weight():
    # The stack alone, with unzeroed padding in the source: only the key mask can hide it.
    torch.manual_seed(0)
    stack = TransformerStack(DIM, 2, 2, cross=True, attn_dropout=0.0, relu_dropout=0.0,
                             res_dropout=0.0).eval()
    target, source = torch.randn(2, 5, DIM), torch.randn(2, 6, DIM)
    key_mask = torch.tensor([[True] * 6, [True] * 3 + [False] * 3])
    other = source.clone()
    other[1, 3:] = 1e3 * torch.randn(3, DIM)
    with torch.no_grad():
        a, b = stack(target, source, key_mask), stack(target, other, key_mask)
        unmasked = stack(target, other, torch.ones_like(key_mask))
    torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-6)
    assert not torch.allclose(unmasked[1], a[1], atol=1e-3)  # so the check above could fail


def test_changing_a_source_at_padded_steps_leaves_the_output_unchanged():
    modalities = ["text", "audio"]
    fusion = _fusion(modalities, "mean")
    x, mask = _inputs(modalities, [6, 3])
    y = dict(x, audio=x["audio"].clone())
    y["audio"][1, 3:] = 1e3 * torch.randn(3, DIMS["audio"])
    with torch.no_grad():
        torch.testing.assert_close(fusion(y, mask), fusion(x, mask), atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("pool", ["last", "mean"])
def test_each_target_stream_sees_every_other_modality(pool):
    modalities = ["text", "audio", "video"]
    M = len(modalities)
    fusion = _fusion(modalities, pool, kernel_sizes=1)
    x, mask = _inputs(modalities, [5, 3])
    with torch.no_grad():
        base = fusion(x, mask)
        for n, source in enumerate(modalities):
            y = dict(x, **{source: x[source].clone()})
            y[source][mask] = torch.randn(int(mask.sum()), DIMS[source])
            out = fusion(y, mask)
            for m in range(M):
                if m != n:
                    assert not torch.allclose(_block(out, m, M), _block(base, m, M), atol=1e-4), (
                        f"target {modalities[m]!r} did not react to source {source!r}")


def test_gradients_reach_every_parameter():
    modalities = ["text", "audio", "video"]
    fusion = _fusion(modalities, kernel_sizes={"text": 3, "audio": 1, "video": 5}).train()
    x, mask = _inputs(modalities, [5, 2])
    fusion(x, mask).sum().backward()
    missing = [name for name, p in fusion.named_parameters() if p.grad is None]
    assert not missing
    # The audio conv feeds the output only through the crossmodal and self-attention stacks.
    assert fusion.convs[1].weight.grad.abs().sum() > 0
    assert all(torch.isfinite(p.grad).all() for p in fusion.parameters())


def test_even_kernel_is_rejected():
    with pytest.raises(ValueError, match=r"kernel size of modality 'audio'.*odd.*got 4"):
        MulTFusion(["text", "audio"], DIMS, DIM, {"text": 3, "audio": 4}, heads=2)


def test_heads_must_divide_both_widths():
    with pytest.raises(ValueError, match=r"heads 4 .*dim=6.*\(M-1\)\*dim=12"):
        MulTFusion(["text", "audio", "video"], DIMS, 6, heads=4)


def test_fewer_than_two_modalities_are_rejected():
    with pytest.raises(ValueError, match="at least 2 modalities"):
        MulTFusion(["text"], DIMS, DIM, heads=2)


def test_unknown_pool_is_rejected():
    with pytest.raises(ValueError, match=r"unknown pool 'max'.*\['last', 'mean'\]"):
        MulTFusion(["text", "audio"], DIMS, DIM, heads=2, pool="max")


def test_missing_and_extra_modalities_are_rejected():
    fusion = _fusion(["text", "audio"])
    x, mask = _inputs(["text", "video"], [3])
    with pytest.raises(ValueError, match=r"missing \['audio'\], unexpected \['video'\]"):
        fusion(x, mask)


def test_wrong_feature_width_is_rejected():
    fusion = _fusion(["text", "audio"])
    x, mask = _inputs(["text", "audio"], [3])
    x["audio"] = torch.randn(1, 3, 9)
    with pytest.raises(ValueError, match=r"sequences\['audio'\] has width 9, expected .* = 5"):
        fusion(x, mask)


def test_modalities_on_different_steps_are_rejected():
    fusion = _fusion(["text", "audio"])
    x, mask = _inputs(["text", "audio"], [3, 2])
    x["audio"] = torch.randn(2, 4, DIMS["audio"])
    with pytest.raises(ValueError,
                       match=r"sequences\['audio'\] has \(B, T\) = \(2, 4\) but step_mask has \(2, 3\)"):
        fusion(x, mask)


def test_row_without_real_steps_is_rejected():
    fusion = _fusion(["text", "audio"])
    x, mask = _inputs(["text", "audio"], [3, 0, 2])
    with pytest.raises(ValueError, match=r"rows \[1\] of step_mask have no real step"):
        fusion(x, mask)


@pytest.mark.parametrize("pool", ["last", "mean"])
def test_pool_reads_the_real_steps_of_each_target_stream(pool):
    modalities = ["text", "audio", "video"]
    fusion = _fusion(modalities, pool)
    x, mask = _inputs(modalities, [5, 2, 4], T=7)
    streams = []
    for stack in fusion.self_attention:
        stack.register_forward_hook(lambda module, args, output: streams.append(output))
    with torch.no_grad():
        out = fusion(x, mask)
    lengths = mask.sum(dim=1)
    for i, h in enumerate(streams):
        if pool == "last":
            expected = h[torch.arange(3), lengths - 1]
        else:
            expected = torch.stack([h[b, :n].mean(dim=0) for b, n in enumerate(lengths.tolist())])
        torch.testing.assert_close(_block(out, i, 3), expected)
