"""Shared test settings: no test may reach the network, and torch stays small and deterministic."""
from __future__ import annotations

import os
import socket

import pytest

os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("TQDM_DISABLE", "1")


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
