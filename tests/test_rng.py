"""Tests for the counter-based noise of interp_helpers._rng.

Known answers (SplitMix64's published output, the exact inverse CDF of each draw's
32 bits), statistics of the normals (mean, variance, Kolmogorov-Smirnov, tails),
independence between neighbouring counters, rows, samples, images and seeds, and
invariance to the chunking (rows, blocks, odd lengths). Statistical checks use fixed
keys, so they are deterministic; thresholds are 5 standard errors (or a KS p-value
of 1e-3), which a correct generator passes and a broken one (e.g. repeated or
correlated streams, a wrong table) does not.
"""
from __future__ import annotations

import math
import random

import numpy as np
import pytest
import torch
from scipy import special, stats

from interp_helpers import _rng

U64 = np.uint64


def splitmix64_np(keys: np.ndarray, n_words: int) -> np.ndarray:
    """Reference SplitMix64 outputs fmix64(key + (w + 1) * gamma) in NumPy uint64 (wraps by definition)."""
    with np.errstate(over="ignore"):
        x = keys.astype(U64)[:, None] + (np.arange(1, n_words + 1, dtype=U64) * U64(_rng._GAMMA))[None, :]
        x ^= x >> U64(30)
        x *= U64(_rng._M1)
        x ^= x >> U64(27)
        x *= U64(_rng._M2)
        x ^= x >> U64(31)
    return x


def ideal_normals(keys: list[int], n: int) -> np.ndarray:
    """Phi^-1((U + 1/2) / 2^32) for the 32-bit draw U of every element, in float64 (the ideal sampler)."""
    words = splitmix64_np(np.array(keys, dtype=np.int64).view(U64), (n + 1) // 2)
    halves = np.stack([words & U64(0xFFFFFFFF), words >> U64(32)], axis=-1).reshape(len(keys), -1)[:, :n]
    cell = (halves >> U64(16)).astype(np.float64)
    pos = (halves & U64(0xFFFF)).astype(np.float64)
    u = (cell * 65536 + pos + 0.5) / 2.0**32
    return special.ndtri(u)


def normals(keys: list[int], n: int, dtype: torch.dtype = torch.float32) -> torch.Tensor:
    return _rng.normal_(torch.empty(len(keys), n, dtype=dtype), torch.tensor(keys, dtype=torch.int64))


# --------------------------------------------------------------------------- known answers


def test_splitmix64_known_output():
    # SplitMix64 (Steele et al. 2014; Vigna's reference C code) seeded with 0 returns these first
    assert _rng._fmix64(0 + 1 * _rng._GAMMA) == 0xE220A8397B1DCDAF
    assert _rng._fmix64(0 + 2 * _rng._GAMMA) == 0x6E789E6AA1B965F4
    assert _rng._fmix64(0 + 3 * _rng._GAMMA) == 0x06C45D188009454F


def test_torch_mixing_equals_numpy_uint64_reference():
    keys = [_rng.stream_key(s, i) for s in (0, 1, 2**62) for i in (0, 1, 99)] + [0, -1, -(2**63), 2**63 - 1]
    n_words = 1000
    ref = splitmix64_np(np.array(keys, dtype=np.int64).view(U64), n_words).view(np.int64)
    words = torch.tensor(keys).view(-1, 1) + _rng._steps(n_words, torch.device("cpu"))
    _rng._fmix64_(words, torch.empty_like(words))
    assert np.array_equal(words.numpy(), ref)


def test_stream_keys_are_python_splitmix_chains():
    k = _rng._fmix64(5 ^ _rng._SEED_DOMAIN)
    k = _rng._fmix64(k + 3 * _rng._GAMMA)  # index 2
    k = _rng._fmix64(k + 8 * _rng._GAMMA)  # index 7
    assert _rng.stream_key(5, 2, 7) == _rng._signed(k)
    keys = {_rng.stream_key(s, i, j) for s in range(4) for i in range(4) for j in range(4)}
    assert len(keys) == 64  # all distinct, (1, 0) != (0, 1) included
    assert _rng.stream_key(0, 1, 0) != _rng.stream_key(0, 0, 1)
    assert all(-(2**63) <= k < 2**63 for k in keys)


def test_normals_are_the_inverse_cdf_of_each_draw():
    # body: linear between exact quantiles (|error| < 5e-4, < 1e-7 for |z| < 2); the 8 outermost
    # cells on each side: exact, so the extreme values agree to float rounding
    keys = [_rng.stream_key(1, j) for j in range(20)]
    n = 100_001  # odd: the last word's second normal is dropped
    ours = normals(keys, n, torch.float64).numpy()
    ideal = ideal_normals(keys, n)
    err = np.abs(ours - ideal)
    assert err.max() < 5e-4, err.max()
    centre = np.abs(ideal) < 2
    assert err[centre].max() < 1e-7, err[centre].max()
    tail = np.abs(ideal) > 3.68  # beyond Phi^-1(8 / 2^16): the exact tail tables
    assert tail.sum() > 100 and err[tail].max() < 1e-12
    # float32: the same to float32 rounding and the slope's rounding (about 4 ulp at most for |z| < 2)
    err32 = np.abs(normals(keys[:4], n).numpy().astype(np.float64) - ideal[:4])
    assert err32.max() < 5e-4, err32.max()
    assert err32[centre[:4]].max() < 5e-7, err32[centre[:4]].max()
    assert err32[tail[:4]].max() < 5e-7, err32[tail[:4]].max()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_interpolation_product_is_exact(dtype):
    # z = mid + q * slope with q = p - 2^15, |q| <= 2^15: every q * slope is exact in the dtype, so a
    # fused multiply-add and a separate multiplication and addition round alike (any device, any compiler)
    pairs = _rng._tables(dtype, torch.device("cpu")).view(dtype).view(-1, 2).double()
    slope = pairs[:, 1][pairs[:, 1] != 0]
    assert len(slope) == 2**16 - 2 * _rng._TAIL_CELLS  # one per body cell
    for q in (-(2**15), -(2**15) + 1, -12345, -1, 1, 777, 2**15 - 1):
        if dtype == torch.float32:  # the float64 product of the float32 values is exact; it must fit float32
            exact = slope * q
            assert torch.equal(exact.to(dtype).double(), exact), q
        else:  # float64: 38-bit slopes times a 15-bit |q| (or 2^15) fit in 53 bits
            mantissa, _ = torch.frexp(slope)
            assert torch.equal(torch.round(mantissa * 2.0**38), mantissa * 2.0**38)
    # and the generator computes exactly that value (whether or not this CPU's addcmul fuses)
    keys = torch.tensor([_rng.stream_key(4, j) for j in range(3)])
    fused = _rng.normal_(torch.empty(3, 4097, dtype=dtype), keys)
    words = _rng._steps(2049, torch.device("cpu")).unsqueeze(0) + keys.view(-1, 1)
    draws = _rng._fmix64_(words, torch.empty_like(words)).view(torch.int32)[:, :4097]
    index = _rng._row_index(draws, torch.empty_like(draws), torch.empty_like(draws)).long()
    mid, slope = pairs.to(dtype)[index].unbind(-1)
    separate = mid + ((draws & 0xFFFF) - 2**15).to(dtype) * slope
    assert torch.equal(fused, separate)


# --------------------------------------------------------------------------- statistics


@pytest.fixture(scope="module")
def big() -> np.ndarray:
    """4 million standard normals from 16 streams (seed 0, image 0..3, sample 0..3)."""
    keys = [_rng.stream_key(0, i, j) for i in range(4) for j in range(4)]
    return normals(keys, 250_000).numpy().astype(np.float64)


def test_mean_variance_and_normality(big):
    x = big.ravel()
    n = x.size
    assert abs(x.mean()) < 5 / math.sqrt(n)
    assert abs(x.var() - 1) < 5 * math.sqrt(2 / n)
    assert abs(stats.skew(x)) < 5 * math.sqrt(6 / n)
    assert abs(stats.kurtosis(x)) < 5 * math.sqrt(24 / n)
    assert stats.kstest(x, "norm").pvalue > 1e-3
    for row in big:  # and each stream on its own
        assert stats.kstest(row, "norm").pvalue > 1e-4


def test_tails(big):
    x = np.abs(big.ravel())
    n = x.size
    for z in (2.0, 3.0, 4.0):
        p = 2 * stats.norm.sf(z)
        assert abs((x > z).mean() - p) < 5 * math.sqrt(p * (1 - p) / n), z
    assert x.max() < 6.4  # the 32-bit draw bounds |z| by Phi^-1(2^-33) ~ 6.37


def test_cells_are_uniform(big):
    # the top 16 bits choose one of 2^16 equal-probability cells: chi-square on 256 coarser bins
    u = stats.norm.cdf(big.ravel())
    counts = np.bincount(np.minimum((u * 256).astype(int), 255), minlength=256)
    assert stats.chisquare(counts).pvalue > 1e-3


def corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel(), b.ravel())[0, 1])


def test_independence_between_neighbouring_counters(big):
    x = big[0]
    n = x.size
    for lag in (1, 2, 3, 4):  # lag 1: the two halves of one word; lag 2: consecutive words
        assert abs(corr(x[:-lag], x[lag:])) < 5 / math.sqrt(n), lag
    # squares too: dependence in magnitude, not only in sign
    assert abs(corr(x[:-1] ** 2, x[1:] ** 2)) < 5 / math.sqrt(n)
    # rows: image i sample j vs sample j+1, image i vs image i+1 (same element index)
    assert abs(corr(big[0], big[1])) < 5 / math.sqrt(n)
    assert abs(corr(big[0], big[4])) < 5 / math.sqrt(n)


def test_independence_across_seeds():
    n = 200_000
    for s in (0, 1, 2**32 - 1):
        a, b = normals([_rng.stream_key(s, 0, 0), _rng.stream_key(s + 1, 0, 0)], n).numpy()
        assert abs(corr(a, b)) < 5 / math.sqrt(n), s
        assert not np.array_equal(a, b)


def test_no_shifted_copies_between_streams():
    # streams are different sequences, not one sequence read at different offsets
    a, b = normals([_rng.stream_key(3, 0, 0), _rng.stream_key(3, 0, 1)], 4096).numpy()
    assert len(np.intersect1d(a, b)) < 20  # float32 values of 2 x 4096 normals rarely coincide


# --------------------------------------------------------------------------- invariance


def test_rows_do_not_depend_on_the_other_rows_or_the_chunking(monkeypatch):
    keys = [_rng.stream_key(7, i, j) for i in range(2) for j in range(5)]
    n = 3 * 17 * 19  # odd length
    ref = normals(keys, n)
    for k, key in enumerate(keys):
        assert torch.equal(normals([key], n)[0], ref[k])
    assert torch.equal(normals(keys[3:8], n), ref[3:8])
    assert torch.equal(normals(keys, n - 100), ref[:, :n - 100])  # a shorter row is a prefix
    for block in (1, 5, 64, 1000):  # CPU block size: words per block
        monkeypatch.setattr(_rng, "_CPU_BLOCK_WORDS", block)
        assert torch.equal(normals(keys, n), ref), block


def test_dtypes_and_layouts():
    keys = torch.tensor([_rng.stream_key(1, 2, 3)])
    ref = _rng.normal_(torch.empty(1, 64), keys)
    half = _rng.normal_(torch.empty(1, 64, dtype=torch.bfloat16), keys)
    assert torch.equal(half, ref.to(torch.bfloat16))
    with pytest.raises(ValueError, match="out"):
        _rng.normal_(torch.empty(4, 64).t(), torch.zeros(64, dtype=torch.int64))
    with pytest.raises(ValueError, match="out"):
        _rng.normal_(torch.empty(64), keys)
    with pytest.raises(ValueError, match="keys"):
        _rng.normal_(torch.empty(2, 64), keys)
    with pytest.raises(ValueError, match="keys"):
        _rng.normal_(torch.empty(1, 64), keys.float())
    assert _rng.normal_(torch.empty(0, 5), torch.zeros(0, dtype=torch.int64)).shape == (0, 5)


def test_global_rng_untouched():
    torch_state, np_state, py_state = torch.get_rng_state(), np.random.get_state(), random.getstate()
    normals([_rng.stream_key(0, 1)], 1000)
    assert torch.equal(torch_state, torch.get_rng_state())
    assert np.array_equal(np_state[1], np.random.get_state()[1]) and py_state == random.getstate()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_is_bit_identical_to_cpu():
    keys = [_rng.stream_key(0, i, j) for i in range(3) for j in range(7)]
    for n, dtype in ((150_528, torch.float32), (1001, torch.float64), (77, torch.float16)):
        cpu = normals(keys, n, dtype)
        gpu = _rng.normal_(torch.empty(len(keys), n, dtype=dtype, device="cuda"),
                           torch.tensor(keys, device="cuda"))
        assert torch.equal(gpu.cpu(), cpu), (n, dtype)


def test_uniforms():
    u = np.array([_rng.uniforms(2, i, n=50) for i in range(400)])
    assert ((u >= 0) & (u < 1)).all()
    assert stats.kstest(u.ravel(), "uniform").pvalue > 1e-3
    assert abs(corr(u[:, :-1], u[:, 1:])) < 5 / math.sqrt(u[:, 1:].size)
    assert _rng.uniforms(2, 7, n=3) == _rng.uniforms(2, 7, n=50)[:3]  # a prefix: does not depend on n
    assert _rng.uniforms(2, 7, n=3) != _rng.uniforms(3, 7, n=3) != _rng.uniforms(2, 8, n=3)


def test_fused_kernel_equals_tensor_path_in_triton_interpreter():
    # the CUDA kernel's arithmetic, run by Triton's CPU interpreter, against the tensor path
    pytest.importorskip("triton")
    import subprocess
    import sys

    code = (
        "import torch\n"
        "from interp_helpers import _rng\n"
        "keys = torch.tensor([_rng.stream_key(0, 0, j) for j in range(3)] + [-1, 0])\n"
        "for n in (1, 6, 2049, 3001):\n"
        "    for dt in (torch.float32, torch.float64):\n"
        "        ref = _rng.normal_(torch.empty(5, n, dtype=dt), keys)\n"
        "        out = torch.full((5, n), float('nan'), dtype=dt)\n"
        "        assert _rng._normal_triton(out, keys, _rng._tables(dt, torch.device('cpu')))\n"
        "        assert torch.equal(out, ref), (n, dt)\n"
        "print('ok')\n"
    )
    env = {**__import__("os").environ, "TRITON_INTERPRET": "1"}
    res = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert res.returncode == 0 and res.stdout.strip().endswith("ok"), res.stderr[-2000:]


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_cuda_fused_kernel_and_tensor_path_agree(monkeypatch):
    keys = torch.tensor([_rng.stream_key(3, i) for i in range(9)], device="cuda")
    fused = _rng.normal_(torch.empty(9, 150_528, device="cuda"), keys)
    try:
        import triton  # noqa: F401

        assert _rng._TRITON.get("kernel") is not None  # the fused kernel ran
    except ImportError:
        pass
    monkeypatch.setattr(_rng, "_USE_TRITON", False)
    assert torch.equal(_rng.normal_(torch.empty(9, 150_528, device="cuda"), keys), fused)


def test_substream_keys_extend_stream_keys():
    for seed, i, j in ((0, 0, 0), (5, 3, 9), (2**40, 7, 2**33)):
        assert _rng.substream_key(_rng.stream_key(seed, i), j) == _rng.stream_key(seed, i, j)
