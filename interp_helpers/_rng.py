"""Counter-based randomness: every draw is a function of ``(seed, stream, index)``.

* :func:`normal_` / :func:`stream_key` -- the noise of SmoothGrad and its variants:
  element e of sample j of image i is a pure function of ``(seed, i, j, e)``, computed
  for a whole chunk in a fixed number of tensor operations (one fused kernel on CUDA),
  bit for bit the same on every device and for every batch size or chunking.
* :func:`uniforms` -- a method's few scalar draws (expected gradients' background index
  and path point, random crops), from the same kind of counter stream.
* :func:`derive_seed` / :func:`generator` -- a seeded ``torch.Generator`` for code that
  needs one (re-initialising parameters in the sanity checks).

The global RNG is never touched.
"""
from __future__ import annotations

import math
import sys
from typing import Any

import numpy as np
import torch


__all__ = ["derive_seed", "generator", "normal_", "stream_key", "substream_key", "uniforms"]


def derive_seed(seed: int, *index: int) -> int:
    """A 63-bit seed for the stream ``index`` under ``seed`` (NumPy's SeedSequence hashing)."""
    ss = np.random.SeedSequence([int(seed), *[int(i) for i in index]])
    return int(ss.generate_state(1, dtype=np.uint64)[0] >> 1)


def generator(seed: int, *index: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A ``torch.Generator`` on ``device`` seeded for ``(seed, *index)``."""
    g = torch.Generator(device=device)
    g.manual_seed(derive_seed(seed, *index))
    return g


# --------------------------------------------------------------------------- counter-based noise
#
# The noise of element e of stream ``key`` is a pure function of (key, e): no generator
# state, so a chunk of rows is computed in a fixed number of tensor operations whatever
# its size, on any device, and a row's noise does not depend on which rows share its chunk.
#
# * Keys: ``stream_key(seed, *index)`` chains SplitMix64 (Steele, Lea & Flood 2014,
#   "Fast splittable pseudorandom number generators"): k <- fmix64(k + (index + 1) * gamma).
# * Bits: word w of stream k is fmix64(k + (w + 1) * gamma) -- SplitMix64's output, which
#   passes BigCrush -- computed on int64 tensors (two's-complement wrap-around; logical
#   shifts are arithmetic shifts masked).
# * Normals: each 64-bit word gives two normals from its two 32-bit halves U by inversion,
#   z = Phi^-1((U + 1/2) / 2^32). Phi^-1 is tabulated once (float64 ``ndtri``, rounded to
#   the noise dtype): on the 2^16 equal-probability cells given by the top 16 bits of U it is
#   linear between the exact quantiles (error <= 5e-4 in z, all in |z| > 3.6); in the 8
#   outermost cells on each side (probability 2^-12 together) it is exact at 2^-32
#   resolution, so |z| <= 6.4. A draw's table row comes from three integer operations and a
#   clamp (the clamp sends body draws to their cell's row and tail draws to their own row, no
#   branch or mask), and z = mid + q * slope with q = p - 2^15 the draw's position from the
#   middle of its cell and slope rounded to 9 (float32) or 38 (float64) significant bits, so
#   that q * slope is exact: a fused multiply-add and a separate multiplication and addition
#   give the same, correctly rounded, result (float32: within 5e-7 of the float64 inverse for
#   |z| < 2). Only integer operations, table look-ups and that one rounding are used, so the
#   noise is bit-for-bit the same on every device and for every chunking.

_MASK64 = (1 << 64) - 1
_GAMMA = 0x9E3779B97F4A7C15  # SplitMix64's increment (odd; 2^64 / golden ratio)
_M1 = 0xBF58476D1CE4E5B9
_M2 = 0x94D049BB133111EB
_SEED_DOMAIN = 0x6A09E667F3BCC909  # separates keys from the raw seed (sqrt(2) digits)
_TAIL_CELLS = 8  # outermost cells on each side that use the exact tail tables
_TAIL_SPAN = _TAIL_CELLS << 16  # a draw U (signed int32) is in the tails iff -_TAIL_SPAN <= U < _TAIL_SPAN
_CPU_BLOCK_WORDS = 1 << 17  # CPU: words per block (1 MiB of int64): one block per ImageNet-size row
_USE_TRITON = True  # CUDA: the fused kernel below where Triton is available
_CUDA_BLOCK_WORDS = 1 << 24  # other devices: at most this many words at once (bounds memory)


def _signed(value: int) -> int:
    value &= _MASK64
    return value - (1 << 64) if value >> 63 else value


def _fmix64(x: int) -> int:
    """SplitMix64's finaliser (Stafford's "Mix13") on a Python int modulo 2^64."""
    x &= _MASK64
    x ^= x >> 30
    x = (x * _M1) & _MASK64
    x ^= x >> 27
    x = (x * _M2) & _MASK64
    return x ^ (x >> 31)


def stream_key(seed: int, *index: int) -> int:
    """The 64-bit key (as a signed int64) of the noise stream ``(seed, *index)``.

    Distinct index tuples of the same length give distinct streams; a key
    depends on nothing else (no global state, no device).
    """
    k = _fmix64(int(seed) ^ _SEED_DOMAIN)
    for i in index:
        k = _fmix64(k + (int(i) + 1) * _GAMMA)
    return _signed(k)


_UNIFORM_DOMAIN = 0xBB67AE8584CAA73B  # separates uniform draws from the normal noise (sqrt(3) digits)


def uniforms(seed: int, *index: int, n: int) -> list[float]:
    """``n`` floats in [0, 1), 53 random bits each, of the stream ``(seed, *index)``.

    Counter-based like :func:`normal_` (word w of a SplitMix64 stream, in pure Python,
    so the same on every machine): the k-th value does not depend on ``n``. For the
    few scalar draws of a method (crop positions, background indices, path points);
    separated from the normal noise of the same index by a domain constant.
    """
    k = _fmix64((stream_key(seed, *index) & _MASK64) ^ _UNIFORM_DOMAIN)
    return [(_fmix64(k + (w + 1) * _GAMMA) >> 11) * 2.0**-53 for w in range(n)]


def substream_key(key: int, index: int) -> int:
    """The key of stream ``(*parent, index)`` from the parent's key: ``stream_key(seed, i, j) ==
    substream_key(stream_key(seed, i), j)``. Spares re-deriving a shared prefix."""
    return _signed(_fmix64((int(key) & _MASK64) + (int(index) + 1) * _GAMMA))


def _fmix64_(x: torch.Tensor, tmp: torch.Tensor) -> torch.Tensor:
    """In-place :func:`_fmix64` on an int64 tensor (``tmp``: scratch of the same shape)."""
    for shift, mult in ((30, _M1), (27, _M2), (31, None)):
        torch.bitwise_right_shift(x, shift, out=tmp)
        tmp.bitwise_and_((1 << (64 - shift)) - 1)  # logical shift
        x.bitwise_xor_(tmp)
        if mult is not None:
            x.mul_(_signed(mult))  # wraps modulo 2^64 like uint64
    return x


_TABLES: dict[tuple[torch.dtype, torch.device], torch.Tensor] = {}
_STEPS: dict[tuple[int, torch.device], torch.Tensor] = {}


def _row_index(draws: torch.Tensor, out: torch.Tensor, tmp: torch.Tensor) -> torch.Tensor:
    """The table row of each signed int32 draw U = c * 2^16 + p, into ``out`` (``tmp``: scratch).

    ``(c + 2^15) + clamp(U, -S, S) + S`` with S = ``_TAIL_SPAN``: a body draw below the tails
    (U < -S) gets its cell's row c + 2^15 in [0, 2^15 - 8); one above them (U >= S) the row
    c + 2^15 + 2S in [2^15 + 2^20 + 8, 2^20 + 2^16); a tail draw (-S <= U < S) a row of its
    own, c + 2^15 + U + S, strictly increasing in U, in [2^15 - 8, 2^15 + 2^20 + 7).
    """
    torch.bitwise_right_shift(draws, 16, out=out)
    torch.clamp(draws, -_TAIL_SPAN, _TAIL_SPAN, out=tmp)
    return out.add_(tmp).add_(_TAIL_SPAN + (1 << 15))


def _exact_product_slope(slope: torch.Tensor, dtype: torch.dtype) -> torch.Tensor:
    """``slope`` (float64) rounded to the significant bits that make ``q * slope`` exact in
    ``dtype`` for every q = p - 2^15 in [-2^15, 2^15) (9 bits for float32, 38 for float64)."""
    bits = round(-math.log2(torch.finfo(dtype).eps)) + 1 - 15  # significand bits left for slope
    mantissa, exponent = torch.frexp(slope)
    return torch.ldexp(torch.round(mantissa * 2.0**bits) / 2.0**bits, exponent.to(slope.dtype))


def _tables(dtype: torch.dtype, device: torch.device) -> torch.Tensor:
    """The (mid, slope) pairs, 2^16 + 2^20 rows (see :func:`_row_index`), in ``dtype`` on ``device``.

    Returned as a 1-D tensor whose elements are the pairs reinterpreted as one wider
    element (float64 for float32 pairs, complex128 for float64 pairs), so that a row is
    fetched by one gather.

    A 32-bit draw, read as a signed int32, is U = c * 2^16 + p with c its signed top 16
    bits and p in [0, 2^16) its low 16 bits. Its probability cell is ``cell = c mod 2^16``
    (cell k holds u in [k, k + 1) / 2^16), and u = (cell * 2^16 + p + 1/2) / 2^32.
    Body (c outside [-8, 8)): z = mid + (p - 2^15) * slope, linear in u between the cell's
    exact quantiles up to the slope's rounding by :func:`_exact_product_slope` (float32: < 2e-5 in z
    at the ends of the widest body cells, < 4e-7 for |z| < 2). Tail (c in [-8, 8), the 8
    outermost cells on each side): z = mid = Phi^-1(u) exactly, slope 0.
    Built on the CPU in float64, so every device gets the same values.
    """
    key = (dtype, device)
    if key not in _TABLES:
        cells = 1 << 16
        k = torch.arange(cells + 1, dtype=torch.float64)
        knots = torch.special.ndtri(k / cells)  # Phi^-1 at the cell boundaries (+-inf at the ends)
        slope = (knots[1:] - knots[:-1]) / cells
        # z at position p in [0, 2^16) of cell k: knots[k] + (p + 1/2) * slope[k], written as
        # mid[k] + (p - 2^15) * slope[k] around the cell's middle (|p - 2^15| <= 2^15)
        mid = knots[:-1] + (2**15 + 0.5) * slope
        slope = _exact_product_slope(torch.nan_to_num(slope, posinf=0.0), dtype)
        mid = torch.nan_to_num(mid, nan=0.0, posinf=0.0, neginf=0.0)  # the tail cells: unused
        rows = torch.zeros((cells + (1 << 20), 2), dtype=torch.float64)
        c = torch.arange(-cells // 2, cells // 2)  # signed cell field of each cell row ...
        cell = c % cells  # ... and its cell
        body = (c < -_TAIL_CELLS) | (c >= _TAIL_CELLS)
        u_draws = (c * cells)[body].to(torch.int32)  # a draw of each body cell (p = 0): rows by _row_index
        index = _row_index(u_draws, torch.empty_like(u_draws), torch.empty_like(u_draws)).long()
        rows[index, 0] = mid[cell[body]]
        rows[index, 1] = slope[cell[body]]
        draws = torch.arange(-_TAIL_SPAN, _TAIL_SPAN, dtype=torch.int64)  # every tail draw
        unsigned = draws % 2**32
        u = (unsigned.to(torch.float64) + 0.5) / 2.0**32
        # ndtri is accurate in the lower tail; use symmetry for the upper one (1 - u exactly)
        upper = draws < 0
        z = torch.special.ndtri(u)
        z[upper] = -torch.special.ndtri((2.0**32 - 1 - unsigned[upper].to(torch.float64) + 0.5) / 2.0**32)
        d32 = draws.to(torch.int32)
        index = _row_index(d32, torch.empty_like(d32), torch.empty_like(d32)).long()
        rows[index, 0] = z
        pairs = rows.to(dtype).contiguous()
        wide = torch.float64 if dtype == torch.float32 else torch.complex128
        _TABLES[key] = pairs.view(wide).view(-1).to(device)
    return _TABLES[key]


def _steps(n_words: int, device: torch.device) -> torch.Tensor:
    """``(w + 1) * gamma`` (mod 2^64, as int64) for w < n_words, cached per device."""
    key = (n_words, device)
    if key not in _STEPS:
        if len(_STEPS) > 16:
            _STEPS.clear()
        steps = torch.arange(1, n_words + 1, dtype=torch.int64, device=device)
        _STEPS[key] = steps.mul_(_signed(_GAMMA))
    return _STEPS[key]


class _Scratch:
    """Work buffers of one block shape, reused across the blocks of a call (no allocation per block)."""

    def __init__(self, rows: int, n_words: int, device: torch.device, dtype: torch.dtype) -> None:
        self.words = torch.empty((rows, n_words), dtype=torch.int64, device=device)
        self.tmp = torch.empty((rows, n_words), dtype=torch.int64, device=device)
        self.a = torch.empty((rows, 2 * n_words), dtype=torch.int32, device=device)
        self.b = torch.empty((rows, 2 * n_words), dtype=torch.int32, device=device)
        self.f = torch.empty((rows, 2 * n_words), dtype=dtype, device=device)
        wide = torch.float64 if dtype == torch.float32 else torch.complex128
        self.pair = torch.empty(rows * 2 * n_words, dtype=wide, device=device)


def _normal_block(keys: torch.Tensor, w0: int, w1: int, out: torch.Tensor, table: torch.Tensor,
                  steps: torch.Tensor, scratch: _Scratch) -> None:
    """Normals for words [w0, w1) of each stream in ``keys`` into ``out`` ``(len(keys), 2 * (w1 - w0))``.

    Integer operations, one gather of (mid, slope) pairs and z = mid + (p - 2^15) * slope with
    an exact product (one rounding, however the device evaluates it): bit-for-bit the same on
    every device.
    """
    words = torch.add(steps[w0:w1].unsqueeze(0), keys.view(-1, 1), out=scratch.words)  # counters
    _fmix64_(words, scratch.tmp)
    if sys.byteorder == "little":
        draws = words.view(torch.int32)  # (rows, 2 * words): the low half of word w is draw 2w
    else:  # pragma: no cover - big-endian hosts: the same halves by arithmetic
        halves = torch.stack([words & 0xFFFFFFFF, (words >> 32) & 0xFFFFFFFF], dim=-1).flatten(-2)
        draws = (halves - ((halves >> 31) << 32)).to(torch.int32)
    a, b, f = scratch.a, scratch.b, scratch.f
    index = _row_index(draws, a, b).view(-1)
    # one gather of (mid, slope) pairs, each read as a single 8- (or 16-) byte element
    pair = torch.index_select(table, 0, index, out=scratch.pair).view(out.dtype).view(*out.shape, 2)
    torch.bitwise_and(draws, 0xFFFF, out=b).sub_(1 << 15)  # p - 2^15, the position from the cell's middle
    f.copy_(b)
    torch.addcmul(pair[..., 0], f, pair[..., 1], out=out)  # the product is exact: one rounding


# --------------------------------------------------------------------------- fused CUDA kernel
#
# On CUDA the 21 tensor operations above are memory-bound passes over the chunk (about
# 0.37 ms for 32 ImageNet-size samples on an H200 with 0.1's 26 operations, 15 x
# torch.randn). The same computation as one Triton kernel: the same integers, the same table
# and the same exact product, so the result is bit for bit that of the tensor path (checked
# by the CUDA tests, and by Triton's interpreter on the CPU). Used when Triton is importable
# and the device is CUDA; the tensor path otherwise.

_TRITON: dict[str, Any] = {}
_TRITON_BLOCK = 1024  # words per program


def _triton_kernel() -> Any:
    if "kernel" not in _TRITON:
        _TRITON["kernel"] = None
        try:
            import triton
            import triton.language as tl
        except Exception:  # pragma: no cover - no Triton: the tensor path
            return None

        @triton.jit
        def _kernel(out_ptr, keys_ptr, table_ptr, n_cols, n_words, gamma, m1, m2,
                    SPAN: tl.constexpr, BLOCK: tl.constexpr):
            row = tl.program_id(1)
            w = tl.program_id(0) * BLOCK + tl.arange(0, BLOCK)
            key = tl.load(keys_ptr + row).to(tl.uint64, bitcast=True)
            x = key + (w.to(tl.uint64) + 1) * gamma.to(tl.uint64, bitcast=True)
            x = x ^ (x >> 30)
            x = x * m1.to(tl.uint64, bitcast=True)
            x = x ^ (x >> 27)
            x = x * m2.to(tl.uint64, bitcast=True)
            x = x ^ (x >> 31)
            for half in tl.static_range(2):
                draw = (x >> (32 * half)) & 0xFFFFFFFF
                c = ((draw >> 16).to(tl.int32) ^ 0x8000) - 0x8000  # signed cell field
                p = (draw & 0xFFFF).to(tl.int32)
                q = p - 32768  # the position from the cell's middle
                signed = c * 65536 + p  # the draw as a signed int32, as the tensor path reads it
                index = (c + 32768 + tl.minimum(tl.maximum(signed, -SPAN), SPAN) + SPAN).to(tl.int64)
                mid = tl.load(table_ptr + 2 * index)
                slope = tl.load(table_ptr + 2 * index + 1)
                col = 2 * w + half
                tl.store(out_ptr + row.to(tl.int64) * n_cols + col, mid + q.to(mid.dtype) * slope,
                         mask=col < n_cols)

        _TRITON["kernel"] = _kernel
    return _TRITON["kernel"]


def _normal_triton(out: torch.Tensor, keys: torch.Tensor, table: torch.Tensor) -> bool:
    """Fill ``out`` with the fused kernel; False where it cannot run (the caller falls back)."""
    kernel = _triton_kernel()
    if kernel is None:
        return False
    rows, n = out.shape
    n_words = (n + 1) // 2
    grid = ((n_words + _TRITON_BLOCK - 1) // _TRITON_BLOCK, rows)
    try:
        kernel[grid](out, keys, table.view(out.dtype), n, n_words, _signed(_GAMMA), _signed(_M1), _signed(_M2),
                     SPAN=_TAIL_SPAN, BLOCK=_TRITON_BLOCK, enable_fp_fusion=False)
    except Exception:  # pragma: no cover - a Triton that cannot compile this: the tensor path
        _TRITON["kernel"] = None
        return False
    return True


def normal_(out: torch.Tensor, keys: torch.Tensor) -> torch.Tensor:
    """Fill row r of ``out`` (2-D, contiguous, floating) with N(0, 1) noise of stream ``keys[r]``.

    Element e of row r depends on ``(keys[r], e)`` only: the same whatever the other
    rows, the number of rows, the device (bit-for-bit) and the block size used.
    ``keys`` is an int64 tensor of :func:`stream_key` values on ``out``'s device.
    """
    if out.dim() != 2 or not out.is_contiguous() or not out.is_floating_point():
        raise ValueError(f"out must be a contiguous 2-D floating tensor, got {tuple(out.shape)} {out.dtype}")
    if keys.dtype != torch.int64 or keys.shape != (out.shape[0],) or keys.device != out.device:
        raise ValueError(f"keys must be an int64 tensor of shape ({out.shape[0]},) on {out.device}")
    rows, n = out.shape
    if rows == 0 or n == 0:
        return out
    table_dtype = out.dtype if out.dtype in (torch.float32, torch.float64) else torch.float32
    table = _tables(table_dtype, out.device)
    if (out.device.type == "cuda" and table_dtype == out.dtype and rows < 65536 and _USE_TRITON
            and _normal_triton(out, keys, table)):
        return out
    n_words = (n + 1) // 2
    steps = _steps(n_words, out.device)
    limit = _CPU_BLOCK_WORDS if out.device.type == "cpu" else _CUDA_BLOCK_WORDS
    per_block = max(1, limit // n_words)  # whole rows per block; long rows are split into word ranges
    row_blocks = [(r, min(rows, r + per_block)) for r in range(0, rows, per_block)]
    scratch = None
    for r0, r1 in row_blocks:
        for w0 in range(0, n_words, limit):
            w1 = min(n_words, w0 + limit)
            stop = min(n, 2 * w1)
            # write straight into ``out`` where the block is a contiguous slice of it
            direct = table_dtype == out.dtype and stop == 2 * w1 and (r1 - r0 == 1 or (w0 == 0 and stop == n))
            block = out[r0:r1, 2 * w0:stop] if direct else torch.empty(
                (r1 - r0, 2 * (w1 - w0)), dtype=table_dtype, device=out.device)
            shape = (r1 - r0, w1 - w0)
            if scratch is None or scratch.words.shape != shape:
                scratch = _Scratch(*shape, out.device, table_dtype)
            _normal_block(keys[r0:r1], w0, w1, block, table, steps, scratch)
            if not direct:
                out[r0:r1, 2 * w0:stop] = block[:, :stop - 2 * w0]
    return out
