"""The README's helper-package example runs as written (offline model) and its calls mean what the text says."""
from __future__ import annotations

import re
from pathlib import Path

import torch

README = Path(__file__).resolve().parents[1] / "README.md"


def test_helper_package_example_runs_and_its_claims_hold():
    text = README.read_text()
    section = text[text.index("## The helper package"):]
    code = re.search(r"```python\n(.*?)```", section, flags=re.DOTALL).group(1)
    ns: dict = {}
    exec(compile(code, str(README), "exec"), ns)  # noqa: S102 -- the documented example, as a reader runs it
    ih, model, x = ns["ih"], ns["model"], ns["x"]
    assert ns["sg"].shape == x.shape and ns["sgxi"].shape == x.shape
    # "smoothgrad *is* noise_tunnel(gradient, ...)"
    assert torch.equal(ns["sg"], ih.noise_tunnel(ih.gradient, model, x, 285, n_samples=50))
    # a logit difference as target: the difference of the two gradients
    torch.testing.assert_close(ns["contrast"], ih.gradient(model, x, 285) - ih.gradient(model, x, 281),
                               rtol=1e-4, atol=1e-6)
