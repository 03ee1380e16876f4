"""Counter-based randomness: every draw is a function of ``(seed, stream, index)``.

Noise for sample ``j`` of image ``i`` is drawn from a generator seeded by
``(seed, i, j)`` only, so results are identical whatever the batch size or
the order in which chunks are processed, and the global RNG is never touched.
"""
from __future__ import annotations

import numbers

import numpy as np
import torch

__all__ = ["check_seed", "derive_seed", "generator"]


def check_seed(seed: int | None, name: str = "seed") -> int:
    """Validate ``seed``; ``None`` draws a fresh seed from OS entropy (not from global state)."""
    if seed is None:
        return int(np.random.SeedSequence().generate_state(1, dtype=np.uint64)[0] >> 1)
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"{name} must be a non-negative integer or None, got {seed!r}")
    return int(seed)


def derive_seed(seed: int, *index: int) -> int:
    """A 63-bit seed for the stream ``index`` under ``seed`` (NumPy's SeedSequence hashing)."""
    ss = np.random.SeedSequence([int(seed), *[int(i) for i in index]])
    return int(ss.generate_state(1, dtype=np.uint64)[0] >> 1)


def generator(seed: int, *index: int, device: torch.device | str = "cpu") -> torch.Generator:
    """A ``torch.Generator`` on ``device`` seeded for ``(seed, *index)``."""
    g = torch.Generator(device=device)
    g.manual_seed(derive_seed(seed, *index))
    return g
