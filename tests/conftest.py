"""Shared test settings: no test may reach the network, and torch stays small and deterministic."""
from __future__ import annotations

import os
import socket

import pytest

from tools.threads import set_thread_defaults

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("TQDM_DISABLE", "1")
# Before anything imports torch: few threads, and threads that sleep instead of spinning while they wait
# (OpenMP's default spinning made a busy 2-core machine 7-14x slower; README, "Threads and busy machines").
# Kernels started by the notebook tests get the same settings (tools.tutorial.kernel_environment).
set_thread_defaults(os.environ)


@pytest.fixture(autouse=True)
def _no_network(monkeypatch, request):
    """Refuse every connection that does not go to this machine (loopback stays allowed)."""
    real = socket.socket.connect

    def guarded(self, address):
        host = address[0] if isinstance(address, tuple) else address
        if isinstance(host, str) and not (host.startswith("127.") or host in ("localhost", "::1")):
            raise OSError(f"test tried to reach {address}: no network in tests")
        return real(self, address)

    monkeypatch.setattr(socket.socket, "connect", guarded)
    yield


@pytest.fixture
def fake_model_device(monkeypatch):
    """Pretend the model lives on another device ("cpu:0", distinct from the inputs' "cpu").

    No GPU is needed: a method must find the model's device through ``_common.model_device`` (the one device
    policy), move its inputs there (a spy on ``Tensor.to`` records the shapes moved) and return results on the
    inputs' device. Returns the list of recorded shapes.
    """
    import torch

    from interp_helpers import _common

    fake = torch.device("cpu", 0)
    moves = []
    real_to = torch.Tensor.to

    def spy_to(self, *args, **kwargs):
        target = kwargs.get("device", args[0] if args else None)
        if isinstance(target, torch.device) and target == fake:
            moves.append(tuple(self.shape))
        return real_to(self, *args, **kwargs)

    monkeypatch.setattr(_common, "model_device", lambda module, fallback: fake)
    monkeypatch.setattr(torch.Tensor, "to", spy_to)
    return moves
