"""The prose of the committed notebooks quotes the run: every decimal number in a markdown cell was printed above it.

The convention (README, "Writing a notebook"): a decimal number in a markdown cell (0.67, 2.7e-08, 37.3 %) must
appear, exactly as written, in the output of a code cell above it. Exempt are numbers inside inline code or
LaTeX math, arXiv identifiers, and numbers the cell lists in an HTML comment as not coming from the run, e.g.
``<!-- not from the run: 0.15 (the paper's noise level), 0.6 (Quantus's version) -->``.
"""
from __future__ import annotations

import copy
import re
from pathlib import Path

import nbformat
import pytest

NOTEBOOKS = sorted((Path(__file__).resolve().parents[1] / "notebooks").glob("*.ipynb"))

NUMBER = re.compile(r"(?<![\w.])\d+\.\d+(?:e[-+]?\d+)?(?![\w.]*\d)")
EXEMPT = re.compile(r"<!--\s*not from the run:(.*?)-->", re.DOTALL)


def _outputs(cell) -> str:
    parts = []
    for out in cell.get("outputs", []):
        if out.get("output_type") == "stream":
            parts.append(out["text"])
        for kind in ("text/plain", "text/html", "text/markdown"):
            if kind in out.get("data", {}):
                parts.append(out["data"][kind])
    return "\n".join(parts)


def unquoted_numbers(nb) -> list[tuple[int, str]]:
    """``(cell index, number)`` for every decimal number in a markdown cell not printed by a code cell above it."""
    printed, missing = "", []
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            printed += "\n" + _outputs(cell)
            continue
        if cell.cell_type != "markdown":
            continue
        text = cell.source
        exempt = set(NUMBER.findall(" ".join(EXEMPT.findall(text))))
        text = EXEMPT.sub(" ", text)
        text = re.sub(r"`[^`]*`|\$\$.*?\$\$|\$[^$]*\$|arXiv:\S+", " ", text, flags=re.DOTALL)
        for number in NUMBER.findall(text):
            if number not in exempt and not re.search(rf"(?<![\w.]){re.escape(number)}(?!\d)", printed):
                missing.append((index, number))
    return missing


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_every_quoted_number_was_printed_above(path):
    nb = nbformat.read(path, as_version=4)
    assert unquoted_numbers(nb) == [], f"{path.name}: (markdown cell, number) not printed by a code cell above"


def test_a_changed_number_is_caught():
    nb = nbformat.read(NOTEBOOKS[0], as_version=4)
    quoted = [(i, n) for i, c in enumerate(nb.cells) if c.cell_type == "markdown"
              for n in NUMBER.findall(EXEMPT.sub(" ", re.sub(r"`[^`]*`|\$[^$]*\$|arXiv:\S+", " ", c.source)))]
    assert quoted, "the first notebook quotes no number: pick another for this test"
    index, number = quoted[0]
    changed = copy.deepcopy(nb)
    changed.cells[index].source = changed.cells[index].source.replace(number, number + "9", 1)
    assert (index, number + "9") in unquoted_numbers(changed)
    assert unquoted_numbers(nb) == []


def test_the_conventions_exemptions():
    nb = nbformat.v4.new_notebook()
    code = nbformat.v4.new_code_cell("print(0.25)")
    code.outputs = [nbformat.v4.new_output("stream", name="stdout", text="rho = 0.25\n")]
    nb.cells = [nbformat.v4.new_markdown_cell("Before the run: 0.25."), code,
                nbformat.v4.new_markdown_cell("rho = 0.25, not 0.255 nor 1.25; `noise_level=0.15`, $\\sigma = 0.2$, "
                                              "arXiv:1706.03825, Quantus 0.6 <!-- not from the run: 0.6 -->")]
    assert unquoted_numbers(nb) == [(0, "0.25"), (2, "0.255"), (2, "1.25")]
