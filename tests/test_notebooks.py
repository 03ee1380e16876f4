"""Every notebook runs top to bottom (quick mode), and the committed ones carry one clean full run."""
from __future__ import annotations

import os
import re

import nbformat
import pytest

from interp_helpers.tutorial import NOTEBOOK_DIR, execute_notebook, notebook_paths, render_site

NOTEBOOKS = notebook_paths()
#: Seconds allowed for one notebook in quick mode (the whole series must stay under 10 minutes).
QUICK_TIMEOUT = 300


def _code_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code" and c.source.strip()]


def test_the_series_is_numbered_without_gaps():
    numbers = [int(p.name[:2]) for p in NOTEBOOKS]
    assert numbers == list(range(1, len(numbers) + 1)), [p.name for p in NOTEBOOKS]
    assert NOTEBOOKS, f"no notebooks in {NOTEBOOK_DIR}"


@pytest.mark.notebooks
@pytest.mark.timeout(QUICK_TIMEOUT + 60)
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_executes_in_quick_mode(path, tmp_path):
    out = tmp_path / path.name
    # the offline model, always: a kernel is another process, which the no-network fixture cannot guard
    env = {**os.environ, "INTERP_MODEL": "efficientnet_lite0"}
    seconds = execute_notebook(path, quick=True, timeout=QUICK_TIMEOUT, output=out, env=env)
    nb = nbformat.read(out, as_version=4)
    errors = [o for c in _code_cells(nb) for o in c.outputs if o.output_type == "error"]
    assert not errors
    assert "Mode: QUICK" in "".join(o.get("text", "") for o in _code_cells(nb)[0].outputs)
    assert seconds < QUICK_TIMEOUT


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_committed_notebook_is_one_clean_full_run(path):
    nb = nbformat.read(path, as_version=4)
    cells = _code_cells(nb)
    assert cells[0].source.lstrip().startswith(("import", "#", "%")), "the opening cell sets the notebook up"
    assert "setup_notebook" in cells[0].source, "the opening cell reports versions, device and model"
    assert [c.execution_count for c in cells] == list(range(1, len(cells) + 1))
    assert not [o for c in cells for o in c.outputs if o.output_type == "error"]
    opening = "".join(o.get("text", "") for o in cells[0].outputs)
    assert "Mode: full" in opening, "commit the outputs of a full `make run`, not of a quick run"
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")


def test_site_renders_every_notebook_with_embedded_figures(tmp_path):
    index = render_site(NOTEBOOKS, site=tmp_path)
    text = index.read_text()
    for path in NOTEBOOKS:
        page = tmp_path / f"{path.stem}.html"
        assert f'href="{page.name}"' in text
        body = page.read_text()
        assert re.search(r"\d+%\|", body) is None, f"{page.name} shows a frozen progress bar"
        assert "data:image/png;base64," in body or "data:image/jpeg;base64," in body, f"{page.name} has no figure"


def test_summary_is_the_plain_first_sentence():
    from nbformat.v4 import new_markdown_cell, new_notebook

    from interp_helpers.tutorial import summary_of

    nb = new_notebook(cells=[new_markdown_cell("# 07 · Title\n\nA **bold** claim about `code`,\nover two lines. More.\n\nNext.")])
    assert summary_of(nb) == ("07 · Title", "A bold claim about code, over two lines.")
