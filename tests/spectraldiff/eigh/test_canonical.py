"""canonical_eigenvectors: one basis per matrix inside repeated eigenspaces, whatever the solver gave."""

import torch

import spectraldiff as sd
from spectraldiff.eigh import canonical_eigenvectors, path_tie_breaker


def _rotate_within(U, lam, n, groups, seed=0):
    """``U`` with a random orthogonal rotation applied inside each ``[start, stop)`` column group."""
    g = torch.Generator().manual_seed(seed)
    out = U.clone()
    for b, (start, stop) in groups:
        k = stop - start
        Q, _ = torch.linalg.qr(torch.randn(k, k, generator=g, dtype=U.dtype))
        out[b, :, start:stop] = U[b, :, start:stop] @ Q
    return out


def _padded_batch():
    # Graph 0: all ones on 6 nodes (eigenvalue 0 five times); graph 1: two disjoint triangles on 7 nodes
    # padded into 8 (eigenvalue 2 twice, -1 four times); graph 2: a path, no repeats.
    A = torch.zeros(3, 8, 8, dtype=torch.float64)
    A[0, :6, :6] = 1.0
    for block in ((0, 1, 2), (3, 4, 5)):
        for i in block:
            for j in block:
                if i != j:
                    A[1, i, j] = 1.0
    steps = torch.arange(6)
    A[2, steps, steps + 1] = A[2, steps + 1, steps] = 1.0
    return A, torch.tensor([6, 7, 7])


def test_any_rotation_inside_repeated_eigenspaces_gives_the_same_basis():
    A, sizes = _padded_batch()
    lam, U = sd.batched_eigh(A, sizes)
    tie = path_tie_breaker(sizes, 8)
    reference = canonical_eigenvectors(lam, U, sizes, tie)
    rotated = _rotate_within(U, lam, sizes, [(0, (0, 5)), (1, (0, 4)), (1, (5, 7))])
    assert not torch.allclose(rotated, U, atol=1e-3)  # the input really changed
    again = canonical_eigenvectors(lam, rotated, sizes, tie)
    torch.testing.assert_close(again, reference, atol=1e-10, rtol=0)
    # So does anything read column by column, e.g. the spectrum of another matrix in this basis.
    S = torch.rand(3, 8, 8, dtype=torch.float64)
    S = S + S.mT
    diag = lambda V: torch.einsum("bik,bij,bjk->bk", V, S, V)  # noqa: E731
    torch.testing.assert_close(diag(again), diag(reference), atol=1e-10, rtol=0)
    assert not torch.allclose(diag(rotated), diag(U), atol=1e-3)


def test_the_canonical_basis_is_still_an_orthonormal_eigenbasis_and_leaves_simple_columns_alone():
    A, sizes = _padded_batch()
    lam, U = sd.batched_eigh(A, sizes)
    C = canonical_eigenvectors(lam, U, sizes, path_tie_breaker(sizes, 8))
    for b, n in enumerate(sizes.tolist()):
        V = C[b, :n, :n]
        torch.testing.assert_close(V.mT @ V, torch.eye(n, dtype=V.dtype), atol=1e-10, rtol=0)
        torch.testing.assert_close(A[b, :n, :n] @ V, V * lam[b, :n], atol=1e-10, rtol=0)
        assert torch.all(C[b, n:] == 0) and torch.all(C[b, :, n:] == 0)
    # The path (graph 2) has distinct eigenvalues: its columns only get their signs fixed.
    torch.testing.assert_close(C[2].abs(), U[2].abs(), atol=1e-12, rtol=0)
    weights = torch.arange(1, 9, dtype=C.dtype)
    moments = weights @ C[0, :, :6]
    assert torch.all(moments > 0)


def test_the_tie_breaker_separates_the_all_ones_eigenspace():
    sizes = torch.tensor([9])
    A = torch.ones(1, 9, 9, dtype=torch.float64)
    lam, U = sd.batched_eigh(A, sizes)
    T = path_tie_breaker(sizes, 9)
    C = canonical_eigenvectors(lam, U, sizes, T)
    V = C[0, :, :8]
    restricted = torch.linalg.eigvalsh(V.mT @ T[0] @ V)
    assert float((restricted[1:] - restricted[:-1]).min()) > 1e-2  # distinct: the basis is determined
    torch.testing.assert_close(V.mT @ T[0] @ V, torch.diag(restricted), atol=1e-10, rtol=0)
