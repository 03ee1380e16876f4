"""The notebook series: every notebook runs (quick mode, solutions included), the committed ones are one
clean full run that stays light and legible, ends with exercises, and renders into a navigable site.

Notebook execution and site rendering live in ``tools/tutorial.py`` (a maintainer tool, not the library).
"""
from __future__ import annotations

import base64
import html
import inspect
import io
import os
import re
import signal
import time

import nbformat
import pytest
from nbformat.v4 import new_code_cell, new_markdown_cell, new_notebook

from tools.tutorial import (
    FROZEN_BAR,
    NOTEBOOK_DIR,
    clean_outputs,
    execute_notebook,
    kernel_environment,
    notebook_paths,
    plain_text,
    render_site,
    summary_of,
    torch_threads,
)

NOTEBOOKS = notebook_paths()
#: Seconds one cell may run in quick mode: catches a hung cell, yet leaves room for a machine that is
#: several times oversubscribed (issue 15: a 300 s budget failed at load 5-7).
QUICK_CELL_TIMEOUT = 600
#: Seconds one notebook may run in quick mode, kernel start included (quiet machine: 30-120 s).
QUICK_TOTAL_TIMEOUT = 900
MAX_NOTEBOOK_BYTES = 2_000_000
MAX_SERIES_BYTES = 8_000_000
MIN_FIGURE_DPI = 100
MIN_SOLUTIONS = 3


def _code_cells(nb):
    return [c for c in nb.cells if c.cell_type == "code" and c.source.strip()]


def _solutions(nb):
    return [c for c in nb.cells if c.cell_type == "code" and "solution" in c.metadata.get("tags", [])]


def _texts(out) -> list[str]:
    """Every text a viewer may show for one output."""
    texts = [out.get("text", "")]
    for mime in ("text/plain", "text/html", "text/markdown"):
        value = out.get("data", {}).get(mime, "")
        texts.append(value if isinstance(value, str) else "".join(value))
    return texts


def _frozen_bars(nb) -> list[str]:
    """Where a viewer without widgets would see a progress bar stuck before 100 %."""
    found = []
    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            if "application/vnd.jupyter.widget-view+json" in out.get("data", {}):
                found.append(f"cell {i}: a widget output (its text fallback is the bar's first frame)")
            for text in _texts(out):
                match = FROZEN_BAR.search(text)
                if match:
                    found.append(f"cell {i}: {text[max(0, match.start() - 30):match.end() + 20]!r}")
    return found


def test_the_series_is_numbered_without_gaps():
    numbers = [int(p.name[:2]) for p in NOTEBOOKS]
    assert numbers == list(range(1, len(numbers) + 1)), [p.name for p in NOTEBOOKS]
    assert NOTEBOOKS, f"no notebooks in {NOTEBOOK_DIR}"


@pytest.mark.notebooks
@pytest.mark.timeout(QUICK_TOTAL_TIMEOUT + 120)
@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_notebook_executes_in_quick_mode(path, tmp_path):
    out = tmp_path / path.name
    # the offline model, always: a kernel is another process, which the no-network fixture cannot guard
    env = {**os.environ, "INTERP_MODEL": "efficientnet_lite0"}
    execute_notebook(path, quick=True, output=out, env=env,
                     cell_timeout=QUICK_CELL_TIMEOUT, total_timeout=QUICK_TOTAL_TIMEOUT)
    nb = nbformat.read(out, as_version=4)
    errors = [o for c in _code_cells(nb) for o in c.outputs if o.output_type == "error"]
    assert not errors
    assert "Mode: QUICK" in "".join(o.get("text", "") for o in _code_cells(nb)[0].outputs)
    # the exercises' worked solutions ran too (they are ordinary cells, tagged `solution`)
    assert all(c.execution_count for c in _solutions(nb)), "a solution cell did not run"
    assert not _frozen_bars(nb)


# --------------------------------------------------------------------------- the committed notebooks


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_committed_notebook_is_one_clean_full_run(path):
    nb = nbformat.read(path, as_version=4)
    cells = _code_cells(nb)
    assert cells[0].source.lstrip().startswith(("import", "#", "%")), "the opening cell sets the notebook up"
    assert "setup_notebook" in cells[0].source, "the opening cell reports versions, device and model"
    assert [c.execution_count for c in cells] == list(range(1, len(cells) + 1))
    assert not [o for c in cells for o in c.outputs if o.output_type == "error"]
    opening = "".join(o.get("text", "") for o in cells[0].outputs)
    assert "Mode: full" in opening, "commit the outputs of a full run (`make notebooks`), not of a quick run"
    assert nb.cells[0].cell_type == "markdown" and nb.cells[0].source.startswith("# ")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_committed_notebook_shows_no_frozen_progress_bar(path):
    found = _frozen_bars(nbformat.read(path, as_version=4))
    assert not found, (f"{path.name} shows progress bars frozen before 100 % (re-execute it with "
                       f"`make notebooks`, which drops them): " + "; ".join(found[:5]))


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_committed_notebook_is_at_most_2_mb(path):
    size = path.stat().st_size
    assert size <= MAX_NOTEBOOK_BYTES, (
        f"{path.name} is {size / 1e6:.2f} MB, over the {MAX_NOTEBOOK_BYTES / 1e6:.0f} MB limit: save photo-like "
        "figures as JPEG (`%config InlineBackend.figure_formats = ['jpeg']`), show fewer or smaller panels"
    )


def test_committed_series_is_at_most_8_mb():
    sizes = {p.name: p.stat().st_size for p in NOTEBOOKS}
    total = sum(sizes.values())
    assert total <= MAX_SERIES_BYTES, (
        f"the notebooks total {total / 1e6:.2f} MB, over {MAX_SERIES_BYTES / 1e6:.0f} MB: "
        + ", ".join(f"{n} {s / 1e6:.2f} MB" for n, s in sizes.items())
    )


def _figure_dpis(nb):
    from PIL import Image

    for i, cell in enumerate(nb.cells):
        for out in cell.get("outputs", []):
            for mime in ("image/png", "image/jpeg"):
                data = out.get("data", {}).get(mime)
                if data:
                    with Image.open(io.BytesIO(base64.b64decode(data))) as im:
                        yield i, mime, im.info.get("dpi"), im.size


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_committed_figures_have_at_least_100_dpi(path):
    # matplotlib writes the figure's dpi into every PNG (pHYs) and JPEG (JFIF density) it saves
    low = [f"cell {i} ({mime}, {size[0]}x{size[1]} px): {dpi[0]:.0f} dpi"
           for i, mime, dpi, size in _figure_dpis(nbformat.read(path, as_version=4))
           if dpi is not None and round(dpi[0]) < MIN_FIGURE_DPI]
    assert not low, f"{path.name} has figures below {MIN_FIGURE_DPI} dpi (drop fig.set_dpi/ dpi=): " + "; ".join(low)


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_committed_notebook_ends_with_exercises_and_tested_solutions(path):
    nb = nbformat.read(path, as_version=4)
    heading = re.compile(r"^#{2,3}\s+(\d+[.)]?\s*)?Exercises\b", re.IGNORECASE | re.MULTILINE)
    starts = [i for i, c in enumerate(nb.cells) if c.cell_type == "markdown" and heading.search(c.source)]
    assert starts, f"{path.name} has no '## Exercises' section (a markdown heading) at its end"
    start = starts[-1]
    solutions = [i for i, c in enumerate(nb.cells) if c.cell_type == "code" and "solution" in c.metadata.get("tags", [])]
    assert len(solutions) >= MIN_SOLUTIONS, (
        f"{path.name} has {len(solutions)} code cells tagged 'solution' (cell.metadata.tags == ['solution']); "
        f"each of its {MIN_SOLUTIONS}-4 exercises needs a worked solution in one"
    )
    early = [i for i in solutions if i < start]
    assert not early, f"{path.name}: solution cells {early} come before the Exercises heading (cell {start})"
    after = [i for i, c in enumerate(nb.cells) if i > solutions[-1] and c.cell_type == "code" and c.source.strip()]
    assert not after, (f"{path.name}: code cells {after} follow the last solution; the notebook must end with its "
                       "exercises (move an appendix before the Exercises heading)")


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[p.stem for p in NOTEBOOKS])
def test_committed_notebook_has_a_summary(path):
    nb = nbformat.read(path, as_version=4)
    summary = nb.metadata.get("interp", {}).get("summary")
    assert isinstance(summary, str) and summary.strip(), (
        f'{path.name} has no nb.metadata["interp"]["summary"]: one sentence saying what the notebook teaches '
        "(the site's landing page shows it)"
    )
    assert len(summary) <= 400, f"{path.name}: the summary is {len(summary)} characters; keep it to one sentence"


# --------------------------------------------------------------------------- execution is bounded


def _sleeper(tmp_path, *sleeps: float):
    """A tiny notebook that writes its kernel's pid to a file, then sleeps ``sleeps`` seconds, cell by cell."""
    pid_file = tmp_path / "kernel.pid"
    cells = [new_code_cell(f"import os, time\nopen({str(pid_file)!r}, 'w').write(str(os.getpid()))")]
    cells += [new_code_cell(f"time.sleep({s})") for s in sleeps]
    path = tmp_path / "sleeper.ipynb"
    nbformat.write(new_notebook(cells=cells), path)
    return path, pid_file


def _gone(pid_file) -> bool:
    psutil = pytest.importorskip("psutil")
    pid = int(pid_file.read_text())
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE:
            return True
        time.sleep(0.2)
    return False


@pytest.mark.timeout(180)
def test_a_cell_over_its_timeout_stops_the_notebook_and_its_kernel(tmp_path):
    from nbclient.exceptions import CellTimeoutError

    path, pid_file = _sleeper(tmp_path, 120)
    with pytest.raises(CellTimeoutError):
        execute_notebook(path, quick=True, cell_timeout=3, output=tmp_path / "out.ipynb")
    assert _gone(pid_file), "the timed-out notebook's kernel is still running"
    assert not (tmp_path / "out.ipynb").exists()


@pytest.mark.timeout(180)
def test_a_notebook_over_its_total_time_is_stopped_and_its_kernel_shut_down(tmp_path):
    path, pid_file = _sleeper(tmp_path, 2, 2, 2, 2, 2, 2, 2, 2, 2, 2)
    start = time.monotonic()
    with pytest.raises(TimeoutError, match="total_timeout=8"):
        execute_notebook(path, quick=True, cell_timeout=60, total_timeout=8, output=tmp_path / "out.ipynb")
    assert time.monotonic() - start < 60
    assert _gone(pid_file), "the kernel outlived the notebook's total timeout"


@pytest.mark.timeout(180)
def test_an_exception_raised_while_the_kernel_runs_still_shuts_it_down(tmp_path):
    # pytest-timeout's default method raises from a SIGALRM handler in the middle of execution
    path, pid_file = _sleeper(tmp_path, 120)

    def alarm(signum, frame):
        if not pid_file.exists():  # the kernel has not started yet: look again shortly
            signal.setitimer(signal.ITIMER_REAL, 0.5)
            return
        raise RuntimeError("stand-in for pytest-timeout")

    previous = signal.signal(signal.SIGALRM, alarm)
    try:
        signal.setitimer(signal.ITIMER_REAL, 1.0)
        with pytest.raises(RuntimeError, match="stand-in"):
            execute_notebook(path, quick=True, cell_timeout=150)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
    assert _gone(pid_file), "the kernel survived an exception raised in the process that started it"
    assert nbformat.read(path, as_version=4).cells[1].outputs == []  # nothing written back


def test_kernels_run_torch_with_few_threads_and_a_passive_wait_policy():
    env = kernel_environment({"PATH": "/bin"}, quick=True)
    assert env["INTERP_QUICK"] == "1" and env["PATH"] == "/bin"
    assert env["OMP_WAIT_POLICY"] == "PASSIVE"
    assert env["OMP_NUM_THREADS"] == env["MKL_NUM_THREADS"] == str(torch_threads())
    assert 1 <= torch_threads() <= min(2, os.cpu_count() or 1)
    # a caller's own choice wins
    mine = kernel_environment({"OMP_NUM_THREADS": "6", "OMP_WAIT_POLICY": "ACTIVE"}, quick=False)
    assert (mine["OMP_NUM_THREADS"], mine["MKL_NUM_THREADS"], mine["OMP_WAIT_POLICY"]) == ("6", "6", "ACTIVE")
    assert mine["INTERP_QUICK"] == "0"
    # an empty variable counts as unset, as it does for OpenMP
    empty = kernel_environment({"OMP_NUM_THREADS": "", "OMP_WAIT_POLICY": ""}, quick=True)
    assert (empty["OMP_NUM_THREADS"], empty["OMP_WAIT_POLICY"]) == (str(torch_threads()), "PASSIVE")


def test_the_test_process_runs_torch_the_same_way():
    import torch

    assert "OMP_WAIT_POLICY" in os.environ  # conftest sets PASSIVE unless the caller chose a policy
    assert torch.get_num_threads() <= int(os.environ["OMP_NUM_THREADS"])


@pytest.mark.parametrize("bad", [0, -1, True, "60"])
def test_execute_notebook_rejects_bad_timeouts(bad, tmp_path):
    path, _ = _sleeper(tmp_path)
    with pytest.raises(ValueError, match="cell_timeout"):
        execute_notebook(path, quick=True, cell_timeout=bad)
    with pytest.raises(ValueError, match="total_timeout"):
        execute_notebook(path, quick=True, total_timeout=bad)
    with pytest.raises(FileNotFoundError, match="missing.ipynb"):
        execute_notebook(tmp_path / "missing.ipynb", quick=True)


# --------------------------------------------------------------------------- progress bars


def test_clean_outputs_drops_widgets_and_keeps_the_final_frame_of_text_bars():
    widget = nbformat.v4.new_output(
        "display_data",
        data={"application/vnd.jupyter.widget-view+json": {"model_id": "x", "version_major": 2, "version_minor": 0},
              "text/plain": "smoothgrad:   0%|          | 0/250 [00:00<?, ?it/s]"},
    )
    text_bar = [nbformat.v4.new_output("stream", name="stderr", text=t)  # frames arrive as separate outputs
                for t in ("\rrun:   0%|    | 0/4", "\rrun:  50%|##  | 2/4", "\rrun: 100%|####| 4/4\nafter\n")]
    printed = nbformat.v4.new_output("stream", name="stdout", text="a\nb\n")
    nb = new_notebook(cells=[new_code_cell("x", outputs=[widget, *text_bar, printed])])
    nb.metadata["widgets"] = {"application/vnd.jupyter.widget-state+json": {"state": {}}}
    assert _frozen_bars(nb)
    clean_outputs(nb)
    outputs = nb.cells[0].outputs
    assert [o.output_type for o in outputs] == ["stream", "stream"]
    assert outputs[0].text == "run: 100%|####| 4/4\nafter\n"
    assert outputs[1].text == "a\nb\n"
    assert "widgets" not in nb.metadata
    assert not _frozen_bars(nb)


@pytest.mark.timeout(180)
def test_an_executed_notebook_shows_final_text_bars_and_no_widget_bars(tmp_path):
    cells = [
        new_code_cell("from tqdm.auto import tqdm\nfor _ in tqdm(range(3), desc='widget'):\n    pass"),
        new_code_cell("import sys\nfrom tqdm import tqdm as text_tqdm\n"
                      "for _ in text_tqdm(range(3), desc='text', file=sys.stdout, mininterval=0):\n    pass"),
    ]
    path, out = tmp_path / "bars.ipynb", tmp_path / "out.ipynb"
    nbformat.write(new_notebook(cells=cells), path)
    env = {k: v for k, v in os.environ.items() if k != "TQDM_DISABLE"}  # bars on, as in `make run`
    execute_notebook(path, quick=True, output=out, env=env)
    nb = nbformat.read(out, as_version=4)
    assert not _frozen_bars(nb)
    assert "widgets" not in nb.metadata
    text = "".join(o.get("text", "") for o in nb.cells[1].outputs)
    assert re.fullmatch(r"text: 100%\|[^\n]*3/3[^\n]*\n", text), text


@pytest.mark.parametrize("text, frozen", [("  0%|   | 0/250", True), ("x: 99%|#", True), ("100%|####| 4/4", False),
                                          ("accuracy 85%| not a bar", True), ("85% of pixels", False)])
def test_frozen_bar_pattern(text, frozen):
    assert bool(FROZEN_BAR.search(text)) is frozen


# --------------------------------------------------------------------------- the site


def _links(body: str, rel: str) -> set[str]:
    """The targets of the page's ``<a rel=...>`` links (attributes in any order)."""
    return set(re.findall(rf'<a (?=[^>]*rel="{rel}")[^>]*href="([^"]+)"', body))


def test_site_renders_every_notebook_with_navigation_figures_and_local_math(tmp_path):
    index = render_site(NOTEBOOKS, site=tmp_path)
    text = index.read_text()
    pages = [tmp_path / f"{p.stem}.html" for p in NOTEBOOKS] + [tmp_path / "api.html"]
    for k, page in enumerate(pages):
        body = page.read_text()
        if page.name != "api.html":
            assert f'href="{page.name}"' in text
            assert not FROZEN_BAR.search(body), f"{page.name} shows a frozen progress bar"
            assert "widget-view+json" not in body
            assert "data:image/png;base64," in body or "data:image/jpeg;base64," in body, f"{page.name} has no figure"
            assert 'src="mathjax/MathJax.js' in body, f"{page.name} does not load the local MathJax"
        # previous / next on every page: the series runs index -> 01 .. NN -> api -> index
        previous = "index.html" if k == 0 else pages[k - 1].name
        following = pages[k + 1].name if k + 1 < len(pages) else "index.html"
        assert _links(body, "prev") == {previous}, f"{page.name} has no link back to {previous}"
        assert _links(body, "next") == {following}, f"{page.name} has no link on to {following}"
        assert "index.html" in re.findall(r'href="([^"]+)"', body), f"{page.name} has no link to the contents"
        # nothing is fetched from the network: no CDN script, stylesheet or font
        remote = re.findall(r'(?:src|href)="(https?://[^"]+)"', body)
        assert not [u for u in remote if not u.startswith(("https://github.com", "https://doi.org"))
                    and re.search(r"\.(js|mjs|css|woff2?)\b", u)], remote
    assert (tmp_path / "mathjax" / "MathJax.js").is_file()


def test_landing_page_is_light_and_summarises_each_notebook(tmp_path):
    index = render_site(NOTEBOOKS, site=tmp_path)
    text = index.read_text()
    thumbs = re.findall(r'<img[^>]+src="([^"]+)"', text)
    assert len(thumbs) == len(NOTEBOOKS)
    assert all(t.endswith(".jpg") and not t.startswith("data:") for t in thumbs)
    weight = len(text.encode()) + sum((tmp_path / t).stat().st_size for t in thumbs)
    assert weight < 300_000, f"the landing page and its thumbnails weigh {weight / 1e3:.0f} kB"
    for path in NOTEBOOKS:
        _title, summary = summary_of(nbformat.read(path, as_version=4))
        assert summary and html.escape(summary) in text, f"{path.name}: its summary is not on the landing page"


def test_solution_cells_render_collapsed(tmp_path):
    nb = new_notebook(cells=[
        new_markdown_cell("# 01 · Demo\n\nThe lesson, with $x^2$."),
        new_code_cell("print('lesson')"),
        new_markdown_cell("## Exercises\n\n1. Square it."),
        new_code_cell("print(3 ** 2)", metadata={"tags": ["solution"]}),
    ])
    nb.metadata["interp"] = {"summary": "How to square `load_model`'s numbers."}
    path = tmp_path / "nb" / "01_demo.ipynb"
    path.parent.mkdir()
    nbformat.write(nb, path)
    render_site([path], site=tmp_path / "site")
    body = (tmp_path / "site" / "01_demo.html").read_text()
    assert body.count("<details") == 1
    details = re.sub(r"<[^>]+>", "", body[body.index("<details"):body.index("</details>")])
    assert "Solution" in details and "print(3 ** 2)" in details
    assert "lesson" not in details
    index = (tmp_path / "site" / "index.html").read_text()
    assert "How to square load_model&#x27;s numbers." in index


def test_api_page_documents_every_public_helper(tmp_path):
    import interp_helpers

    render_site(NOTEBOOKS[:1], site=tmp_path)
    body = (tmp_path / "api.html").read_text()
    for name in interp_helpers.__all__:
        assert f'id="{name}"' in body, f"{name} is missing from the API page"
        first_line = inspect.getdoc(getattr(interp_helpers, name)).splitlines()[0]
        assert html.escape(first_line) in body, f"{name}'s docstring is missing from the API page"


def test_summary_prefers_metadata_and_keeps_identifiers_whole():
    nb = new_notebook(cells=[new_markdown_cell(
        "# 07 · Title\n\nA **bold** claim about `code` and `load_model`,\nover two lines. More.\n\nNext.")])
    assert summary_of(nb) == ("07 · Title", "A bold claim about code and load_model, over two lines.")
    nb.metadata["interp"] = {"summary": "Teaches *one* thing with `setup_notebook`."}
    assert summary_of(nb) == ("07 · Title", "Teaches one thing with setup_notebook.")


@pytest.mark.parametrize("markdown, plain", [
    ("`load_model` and load_model", "load_model and load_model"),
    ("**SHAP**'s _expected_ gradients", "SHAP's expected gradients"),
    ("a [link](https://example.org) and *x*", "a link and x"),
    ("snake_case_name stays", "snake_case_name stays"),
    ("2 * 3 * 4", "2 * 3 * 4"),
])
def test_plain_text(markdown, plain):
    assert plain_text(markdown) == plain
