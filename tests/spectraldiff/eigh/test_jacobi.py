"""The eigh backends (torch, jacobi, cupy): agreement with LAPACK, convergence, degenerate gradients."""

import importlib.util
import warnings

import numpy as np
import pytest
import torch

from spectraldiff.eigh.cupy import CUPY_INSTALL_HINT, _import_cupy, cupy_available
from spectraldiff.eigh.jacobi import _Schedule, default_tolerance, jacobi_decompose, jacobi_eigh
from spectraldiff.eigh import batched_eigh

# Stated tolerances, relative to max(1, max |λ|) of each graph: every backend must meet them.
EIGVAL_TOL = {torch.float64: 1e-12, torch.float32: 1e-5}
# Reconstruction ‖U diag(λ) Uᵀ − A‖_max relative to max(1, max |A|), and orthonormality ‖UᵀU − I‖_max.
RECON_TOL = {torch.float64: 1e-12, torch.float32: 2e-5}

CUDA = torch.cuda.is_available()
DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.skipif(not CUDA, reason="no CUDA device"))]
BACKENDS = [
    "torch",
    "jacobi",
    pytest.param(
        "cupy",
        marks=pytest.mark.skipif(not (CUDA and cupy_available()), reason="needs CuPy and a CUDA device"),
    ),
]


def complete(n):
    return np.ones((n, n)) - np.eye(n)


def cycle(n):
    A = np.zeros((n, n))
    idx = np.arange(n)
    A[idx, (idx + 1) % n] = A[(idx + 1) % n, idx] = 1.0
    return A


def disconnected():
    """K_4 ⊔ C_5 ⊔ an isolated node: repeated eigenvalues across and within components."""
    A = np.zeros((10, 10))
    A[:4, :4] = complete(4)
    A[4:9, 4:9] = cycle(5)
    return A


def blocks_mixed(rng):
    """Sizes 1..17 (odd and even), with repeated and zero eigenvalues and random weights."""
    blocks = [np.zeros((1, 1)), complete(5), cycle(8), disconnected(), np.diag([3.0, 3.0, -1.0])]
    for n in (2, 7, 12, 17):
        w = rng.normal(size=(n, n))
        blocks.append(w + w.T)
    lap = cycle(9)
    blocks.append(np.diag(lap.sum(1)) - lap)  # Laplacian: zero eigenvalue, pairs of repeats
    return blocks


def padded(blocks, dtype, device="cpu"):
    N = max(b.shape[0] for b in blocks)
    A = torch.zeros(len(blocks), N, N, dtype=dtype)
    for i, b in enumerate(blocks):
        A[i, : b.shape[0], : b.shape[0]] = torch.as_tensor(b, dtype=dtype)
    return A.to(device), torch.tensor([b.shape[0] for b in blocks], device=device)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_backend_eigenvalues_match_numpy_on_padded_mixed_batch(backend, dtype, device):
    blocks = blocks_mixed(np.random.default_rng(0))
    A, sizes = padded(blocks, dtype, device)
    lam, _ = batched_eigh(A, sizes, backend=backend)
    lam = lam.cpu().double().numpy()
    for b, block in enumerate(blocks):
        n = block.shape[0]
        expected = np.linalg.eigvalsh(block)
        scale = max(1.0, np.abs(expected).max())
        np.testing.assert_allclose(lam[b, :n], expected, rtol=0, atol=EIGVAL_TOL[dtype] * scale)
        assert np.all(lam[b, n:] == 0)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_backend_reconstructs_padded_batch_with_orthonormal_vectors(backend, dtype, device):
    blocks = blocks_mixed(np.random.default_rng(1))
    A, sizes = padded(blocks, dtype, device)
    lam, U = batched_eigh(A, sizes, backend=backend)
    scale = A.abs().amax(dim=(1, 2)).clamp_min(1.0)
    recon = (U * lam[:, None, :]) @ U.mT
    assert float(((recon - A).abs().amax(dim=(1, 2)) / scale).max()) < RECON_TOL[dtype]
    for b, n in enumerate(sizes.tolist()):
        block = U[b, :n, :n]
        eye = torch.eye(n, dtype=dtype, device=device)
        assert float((block.mT @ block - eye).abs().max()) < RECON_TOL[dtype]


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_jacobi_and_torch_agree_on_random_symmetric_batch(dtype):
    gen = torch.Generator().manual_seed(3)
    X = torch.randn(32, 24, 24, generator=gen, dtype=torch.float64)
    A = (X + X.mT).to(dtype)
    lam_j, U_j = batched_eigh(A, backend="jacobi")
    lam_t, _ = batched_eigh(A, backend="torch")
    scale = float(lam_t.abs().max())
    assert float((lam_j - lam_t).abs().max()) < EIGVAL_TOL[dtype] * scale
    # Eigenvectors are unique up to sign for distinct eigenvalues: compare the projections.
    P = U_j.mT @ A @ U_j
    assert float((P - torch.diag_embed(lam_j)).abs().max()) < RECON_TOL[dtype] * scale


@pytest.mark.parametrize("n", [1, 2, 3, 5, 7, 9, 15])
def test_jacobi_odd_and_tiny_sizes_match_numpy(n):
    gen = torch.Generator().manual_seed(n)
    X = torch.randn(4, n, n, generator=gen, dtype=torch.float64)
    A = X + X.mT
    lam, U = jacobi_eigh(A)
    expected = np.linalg.eigvalsh(A.numpy())
    np.testing.assert_allclose(lam.numpy(), expected, rtol=0, atol=1e-12 * max(1.0, np.abs(expected).max()))
    assert U.shape == (4, n, n)
    assert float((U.mT @ U - torch.eye(n, dtype=A.dtype)).abs().max()) < 1e-13


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_jacobi_meets_its_convergence_tolerance(dtype):
    gen = torch.Generator().manual_seed(5)
    X = torch.randn(16, 33, 33, generator=gen, dtype=torch.float64)
    A = (X + X.mT).to(dtype)
    result = jacobi_decompose(A)
    tol = default_tolerance(dtype, 33)
    assert result.converged
    assert float(result.residual.max()) <= tol
    # Independently: Vᵀ A V is diagonal to the tolerance plus the rounding of forming it.
    V = result.eigenvectors.double()
    D = V.mT @ A.double() @ V
    off = torch.linalg.vector_norm(D - torch.diag_embed(D.diagonal(dim1=-2, dim2=-1)), dim=(-2, -1))
    rel = off / torch.linalg.vector_norm(A.double(), dim=(-2, -1))
    assert float(rel.max()) <= tol + 33 * torch.finfo(dtype).eps


def test_jacobi_looser_tolerance_needs_fewer_sweeps():
    gen = torch.Generator().manual_seed(6)
    X = torch.randn(8, 20, 20, generator=gen, dtype=torch.float64)
    A = X + X.mT
    tight = jacobi_decompose(A)
    loose = jacobi_decompose(A, tol=1e-3)
    assert loose.sweeps < tight.sweeps
    assert float(loose.residual.max()) <= 1e-3


def test_jacobi_warns_when_sweep_cap_is_hit():
    gen = torch.Generator().manual_seed(7)
    X = torch.randn(2, 32, 32, generator=gen, dtype=torch.float64)
    with pytest.warns(RuntimeWarning, match="not converged after 1 sweeps"):
        result = jacobi_decompose(X + X.mT, max_sweeps=1)
    assert not result.converged and result.sweeps == 1


def test_jacobi_diagonal_and_zero_matrices_need_no_sweep():
    A = torch.stack([torch.diag(torch.tensor([3.0, -1.0, 2.0], dtype=torch.float64)), torch.zeros(3, 3, dtype=torch.float64)])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        result = jacobi_decompose(A)
    assert result.sweeps == 0 and result.converged
    assert torch.equal(result.eigenvalues[0], torch.tensor([-1.0, 2.0, 3.0], dtype=torch.float64))
    assert torch.equal(result.residual, torch.zeros(2, dtype=torch.float64))


@pytest.mark.parametrize("m", [2, 4, 6, 8, 16])
def test_round_robin_schedule_meets_every_pair_once_per_sweep(m):
    schedule = _Schedule(m, torch.device("cpu"))
    h = m // 2
    # Label W = [A; V]: A[i, j] = i·m + j, V's first row holds its column indices.
    W0 = torch.zeros(2 * m, m, dtype=torch.float64)
    W0[:m] = torch.arange(m * m, dtype=torch.float64).reshape(m, m)
    W0[m] = torch.arange(m, dtype=torch.float64)

    def gather(W, index):
        return W.reshape(2 * m * m, 1).index_select(0, index).reshape(2 * m, m)

    W = gather(W0, schedule.start)
    met = []
    for _ in range(m - 1):
        layout = W[m].long()
        # Rows and columns of A follow the same layout; V's columns follow it too.
        assert torch.equal(W[:m].long(), layout[:, None] * m + layout[None, :])
        met += [tuple(sorted((int(layout[k]), int(layout[h + k])))) for k in range(h)]
        W = gather(W, schedule.step)
    assert sorted(met) == [(i, j) for i in range(m) for j in range(i + 1, m)]
    assert torch.equal(W, gather(W0, schedule.start))  # a whole sweep returns to round 0's layout


def test_jacobi_gradients_finite_on_repeated_eigenvalues():
    blocks = [complete(6), cycle(8), disconnected(), np.zeros((3, 3))]
    A, sizes = padded(blocks, torch.float64)
    A.requires_grad_(True)
    lam, U = batched_eigh(A, sizes, backend="jacobi")
    # A loss that depends on the eigenvectors themselves, not only on the eigenspaces.
    loss = (lam**2).sum() + (U**4).sum() + (U[:, :, :2] ** 2 * torch.arange(A.shape[-1])[None, :, None]).sum()
    (grad,) = torch.autograd.grad(loss, A)
    assert torch.isfinite(grad).all()


def test_jacobi_eigenvalue_gradient_is_exact_on_degenerate_graphs():
    # d/dA Σ λ_i² = 2A on the real block, however the spectrum repeats.
    blocks = [complete(5), cycle(6), disconnected()]
    A, sizes = padded(blocks, torch.float64)
    A.requires_grad_(True)
    lam, _ = batched_eigh(A, sizes, backend="jacobi")
    (grad,) = torch.autograd.grad((lam**2).sum(), A)
    assert torch.allclose(grad, 2 * A.detach(), atol=1e-10)


def test_jacobi_gradcheck_on_distinct_spectrum():
    gen = torch.Generator().manual_seed(11)
    X = torch.randn(2, 5, 5, generator=gen, dtype=torch.float64)
    A0 = X + X.mT

    def f(A):
        lam, U = batched_eigh(0.5 * (A + A.mT), backend="jacobi")
        return lam, (U * U).sum(-1)  # sign-invariant function of the eigenvectors

    assert torch.autograd.gradcheck(f, (A0.clone().requires_grad_(True),), atol=1e-6)


def test_jacobi_rejects_bad_input():
    with pytest.raises(ValueError, match="square"):
        jacobi_decompose(torch.zeros(2, 3, 4))
    with pytest.raises(ValueError, match="float32 and float64"):
        jacobi_decompose(torch.zeros(2, 3, 3, dtype=torch.float16))
    bad = torch.zeros(3, 2, 2)
    bad[2, 0, 1] = float("nan")
    with pytest.raises(ValueError, match="matrix 2"):
        jacobi_decompose(bad)
    with pytest.raises(ValueError, match="tol"):
        jacobi_decompose(torch.zeros(1, 2, 2), tol=0.0)


def test_cupy_backend_on_cpu_tensor_says_it_needs_cuda():
    with pytest.raises(ValueError, match="CUDA"):
        batched_eigh(torch.eye(3).expand(2, 3, 3).clone(), backend="cupy")


@pytest.mark.skipif(importlib.util.find_spec("cupy") is not None, reason="CuPy is installed")
def test_missing_cupy_error_names_the_install_command():
    with pytest.raises(ImportError, match="pip install cupy-cuda12x"):
        _import_cupy()
    assert "pip install cupy-cuda12x" in CUPY_INSTALL_HINT
