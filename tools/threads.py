"""Thread settings for torch in tests and notebook kernels; no dependencies, so tests/conftest.py can import it.

With OpenMP's default (threads spin while they wait) a 2-thread torch run on the 2-core development machine was
7-14x slower when two other CPU-bound processes competed; with ``OMP_WAIT_POLICY=PASSIVE`` it slowed down about as
much as its share of the CPU shrank (README, "Threads and busy machines").
"""
from __future__ import annotations

import os
from collections.abc import MutableMapping


def torch_threads() -> int:
    """Threads for torch: the usable cores, at most 2 (``OMP_NUM_THREADS`` overrides)."""
    try:
        cores = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        cores = os.cpu_count() or 1
    return max(1, min(cores, 2))


def set_thread_defaults(env: MutableMapping[str, str]) -> MutableMapping[str, str]:
    """Unless ``env`` sets them: ``OMP_NUM_THREADS``/``MKL_NUM_THREADS`` = :func:`torch_threads` and
    ``OMP_WAIT_POLICY=PASSIVE``; an empty variable counts as unset, as it does for OpenMP. Returns ``env``."""
    for name, value in (("OMP_NUM_THREADS", str(torch_threads())), ("OMP_WAIT_POLICY", "PASSIVE")):
        if not env.get(name):
            env[name] = value
    if not env.get("MKL_NUM_THREADS"):
        env["MKL_NUM_THREADS"] = env["OMP_NUM_THREADS"]
    return env
