"""Properties of batched_eigh: agreement with LAPACK per graph, padding, gradients, validation."""

import numpy as np
import pytest
import torch

import spectraldiff.eigh.solve as solve
from spectraldiff import batched_eigh

# Stated tolerances: eigenvalues and reconstruction relative to the matrix scale.
TOL = {torch.float64: 1e-10, torch.float32: 2e-5}


def padded_batch(blocks, dtype=torch.float64):
    """Stack square numpy blocks into a zero-padded (B, N, N) tensor and sizes (B,)."""
    n_max = max(b.shape[0] for b in blocks)
    A = torch.zeros(len(blocks), n_max, n_max, dtype=dtype)
    for i, b in enumerate(blocks):
        A[i, : b.shape[0], : b.shape[0]] = torch.as_tensor(b, dtype=dtype)
    return A, torch.tensor([b.shape[0] for b in blocks])


def random_graph(n, p, rng):
    upper = np.triu(rng.random((n, n)) < p, k=1)
    return (upper | upper.T).astype(float)


def complete(n):
    return np.ones((n, n)) - np.eye(n)


def cycle(n):
    A = np.zeros((n, n))
    for i in range(n):
        A[i, (i + 1) % n] = A[(i + 1) % n, i] = 1
    return A


def laplacian(A):
    return np.diag(A.sum(1)) - A


def mixed_blocks(rng):
    """Sizes 1..17 with repeated and zero eigenvalues: isolated nodes, K_n, cycles, Laplacians."""
    blocks = [np.zeros((1, 1)), np.array([[0.0, 1.0], [1.0, 0.0]]), complete(6), cycle(8), laplacian(cycle(7))]
    blocks.append(np.block([[complete(4), np.zeros((4, 5))], [np.zeros((5, 4)), cycle(5)]]))  # disconnected
    blocks.append(laplacian(random_graph(12, 0.2, rng)))  # Laplacian: zero eigenvalue per component
    blocks += [random_graph(n, 0.3, rng) for n in (3, 10, 17)]
    w = rng.normal(size=(9, 9))
    blocks.append(w + w.T)
    return blocks


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_padded_eigenvalues_equal_numpy_per_graph(dtype):
    blocks = mixed_blocks(np.random.default_rng(0))
    A, sizes = padded_batch(blocks, dtype)
    lam, _ = batched_eigh(A, sizes)
    for b, block in enumerate(blocks):
        n = block.shape[0]
        expected = np.linalg.eigvalsh(block)
        scale = max(1.0, np.abs(expected).max())
        np.testing.assert_allclose(lam[b, :n].double().numpy(), expected, atol=TOL[dtype] * scale * 10)
        assert torch.all(lam[b, n:] == 0)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_reconstruction_and_orthonormality_with_padding(dtype):
    blocks = mixed_blocks(np.random.default_rng(1))
    A, sizes = padded_batch(blocks, dtype)
    lam, U = batched_eigh(A, sizes)
    recon = (U * lam[:, None, :]) @ U.mT
    scale = A.abs().amax(dim=(1, 2)).clamp_min(1.0)
    err = (recon - A).abs().amax(dim=(1, 2)) / scale
    assert float(err.max()) < TOL[dtype] * 50
    for b, n in enumerate(sizes.tolist()):
        block = U[b, :n, :n]
        # Zeroing the padded rows would break orthonormality if padded and real eigenvectors had mixed.
        eye = torch.eye(n, dtype=dtype)
        assert float((block.mT @ block - eye).abs().max()) < TOL[dtype] * 50
        assert torch.all(U[b, n:, :] == 0) and torch.all(U[b, :, n:] == 0)


def test_padding_never_mixes_with_real_null_space():
    # A path-free graph of isolated nodes has an all-zero spectrum: exactly the ghost eigenvalue that
    # zero padding would create. Each eigenvector must stay inside the real block.
    A = torch.zeros(1, 6, 6, dtype=torch.float64)
    lam, U = batched_eigh(A, torch.tensor([3]))
    assert torch.all(lam == 0)
    real = U[0, :3, :3]
    assert torch.allclose(real.mT @ real, torch.eye(3, dtype=torch.float64), atol=1e-12)


def test_single_matrix_without_batch_axis():
    A = torch.as_tensor(cycle(5))
    lam, U = batched_eigh(A)
    assert lam.shape == (5,) and U.shape == (5, 5)
    np.testing.assert_allclose(lam.numpy(), np.linalg.eigvalsh(cycle(5)), atol=1e-12)


def test_numpy_arrays_and_nested_lists_give_the_tensor_result():
    A, sizes = padded_batch([cycle(4), complete(3)])
    lam, U = batched_eigh(A.numpy(), sizes.tolist())  # a float64 array stays float64
    expected = batched_eigh(A, sizes)
    assert torch.equal(lam, expected[0]) and torch.equal(U, expected[1])
    # Floats in a nested list become torch's default dtype, as torch.as_tensor makes them.
    lam, U = batched_eigh(A.tolist(), sizes.tolist())
    expected = batched_eigh(A.to(torch.get_default_dtype()), sizes)
    assert torch.equal(lam, expected[0]) and torch.equal(U, expected[1])


def test_integer_and_boolean_input_becomes_the_default_dtype():
    A = complete(3).astype(np.int64)
    for given in (A, A.astype(bool), A.tolist()):
        lam, U = batched_eigh(given)
        assert lam.dtype == U.dtype == torch.get_default_dtype()
        assert torch.allclose(lam, torch.tensor([-1.0, -1.0, 2.0]), atol=1e-5)


def test_chunked_and_threaded_solve_matches_single_call(monkeypatch):
    rng = np.random.default_rng(2)
    blocks = [random_graph(int(n), 0.4, rng) for n in rng.integers(2, 12, size=37)]
    A, sizes = padded_batch(blocks)
    lam_ref, U_ref = batched_eigh(A, sizes)
    monkeypatch.setattr(solve, "CHUNK_BYTES", 3 * 11 * 11 * 8)  # chunks of 3 matrices
    monkeypatch.setattr(solve, "_cpu_workers", lambda: 2)  # the thread pool, whatever the machine
    threads_before = torch.get_num_threads()
    lam, U = batched_eigh(A, sizes)
    assert torch.get_num_threads() == threads_before  # the pooled solve restores the thread count
    assert torch.allclose(lam, lam_ref, atol=1e-12)
    recon = (U * lam[:, None, :]) @ U.mT
    assert torch.allclose(recon, A, atol=1e-10)


def test_huge_finite_entries_are_not_mistaken_for_inf():
    # The cheap finiteness check sums the batch; this sum overflows although every entry is finite.
    A = torch.full((2, 2, 2), 6e307, dtype=torch.float64)  # eigenvalues 0 and 1.2e308, both finite
    assert not torch.isfinite(A.sum())
    lam, _ = batched_eigh(A)
    assert lam[:, 1].tolist() == pytest.approx([1.2e308, 1.2e308], rel=1e-12)


DEGENERATE = [complete(6), cycle(8), np.kron(np.eye(3), complete(3))]
DEGENERATE_IDS = ["K6", "C8", "3xK3"]


def padded_leaf(block, pad=2):
    n = block.shape[0]
    A = torch.zeros(1, n + pad, n + pad, dtype=torch.float64)
    A[0, :n, :n] = torch.as_tensor(block)
    return A.requires_grad_(True), torch.tensor([n])


@pytest.mark.parametrize("block", DEGENERATE, ids=DEGENERATE_IDS)
def test_eigenvalue_loss_gradient_is_exact_on_repeated_eigenvalues(block):
    # Σ λ³ = tr(A³), whose gradient is 3A², although most eigenvalues repeat.
    A, sizes = padded_leaf(block)
    lam, _ = batched_eigh(A, sizes)
    (lam**3).sum().backward()
    A0 = A.detach()[0]
    assert torch.isfinite(A.grad).all()
    assert torch.allclose(A.grad[0], 3 * A0 @ A0, atol=1e-9)
    assert torch.all(A.grad[0, sizes[0]:, :] == 0)


@pytest.mark.parametrize("block", DEGENERATE, ids=DEGENERATE_IDS)
def test_projector_loss_gradient_matches_finite_differences_on_repeated_eigenvalues(block):
    # L = <W, P> with P the projector on the first repeated eigenvalue's eigenspace (columns lo:hi).
    n = block.shape[0]
    A, sizes = padded_leaf(block)
    lam0 = np.linalg.eigvalsh(block)
    lo = int(np.flatnonzero(np.diff(lam0) < 1e-8)[0])
    hi = lo + int(np.sum(np.abs(lam0 - lam0[lo]) < 1e-8))
    assert hi - lo > 1
    rng = np.random.default_rng(3)
    w = rng.normal(size=(n + 2, n + 2))
    W = torch.as_tensor(w + w.T)

    def loss(M):
        _, U = batched_eigh(M, sizes)
        return (W * (U[:, :, lo:hi] @ U[:, :, lo:hi].mT)).sum()

    loss(A).backward()
    e = rng.normal(size=(n, n))
    E = torch.zeros_like(A.detach())
    E[0, :n, :n] = torch.as_tensor(e + e.T)
    h = 1e-6
    numeric = (loss(A.detach() + h * E) - loss(A.detach() - h * E)) / (2 * h)
    assert torch.isfinite(A.grad).all()
    assert abs(float((A.grad * E).sum()) - float(numeric)) < 1e-5 * max(1.0, abs(float(numeric)))


def test_gradient_of_eigenvector_loss_stays_finite_on_degenerate_spectrum():
    A = torch.as_tensor(complete(7))[None].clone().requires_grad_(True)
    _, U = batched_eigh(A)
    (U.sum() + (U**3).sum()).backward()
    assert torch.isfinite(A.grad).all()


def test_gradcheck_float64_distinct_eigenvalues():
    torch.manual_seed(0)
    X = torch.randn(2, 5, 5, dtype=torch.float64)
    sizes = torch.tensor([5, 3])
    mask = solve.node_mask(sizes, 5)
    pair = (mask[:, :, None] & mask[:, None, :]).double()

    def f(X):
        lam, U = batched_eigh((X + X.mT) * pair, sizes)
        return lam, U * U  # squares are independent of the sign convention

    X = (X * pair).requires_grad_(True)
    assert torch.autograd.gradcheck(f, (X,), atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda: (torch.zeros(2, 3, 4), None), "square"),
        (lambda: (torch.tensor([[[0.0, 1.0], [2.0, 0.0]]]), None), "graph 0: matrix is not symmetric"),
        (lambda: (torch.stack([torch.zeros(2, 2), torch.full((2, 2), float("nan"))]), None), "graph 1: .*NaN"),
        (lambda: (torch.stack([torch.zeros(2, 2), torch.zeros(2, 2), torch.full((2, 2), float("inf"))]), None),
         "graph 2: .*Inf"),
        (lambda: (torch.zeros(3, 4, 4), [4, 5, 4]), r"graph 1: num_nodes = 5 is outside \[1, N = 4\]"),
        (lambda: (torch.zeros(2, 4, 4), [2, 0]), "graph 1: num_nodes = 0"),
        (lambda: (torch.ones(2, 3, 3), [3, 2]), "graph 1: non-zero entries outside"),
        (lambda: (torch.zeros(2, 3, 3), [3, 3, 3]), "num_nodes must have shape"),
        (lambda: (torch.zeros(2, 3, 3, dtype=torch.int64), None), "float32 or float64"),
    ],
)
def test_bad_input_raises_value_error_naming_the_graph(make, message):
    A, sizes = make()
    with pytest.raises(ValueError, match=message):
        batched_eigh(A, sizes)


def test_unknown_backend_lists_valid_ones():
    with pytest.raises(ValueError, match="torch"):
        batched_eigh(torch.zeros(1, 2, 2), backend="nope")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_matches_cpu():
    blocks = mixed_blocks(np.random.default_rng(4))
    A, sizes = padded_batch(blocks)
    lam_cpu, _ = batched_eigh(A, sizes)
    lam_gpu, U_gpu = batched_eigh(A.cuda(), sizes.cuda())
    assert lam_gpu.device.type == "cuda"
    assert torch.allclose(lam_gpu.cpu(), lam_cpu, atol=1e-9)
