"""Executing the notebook series and rendering it as a browsable, offline HTML tutorial.

``python -m interp_helpers.tutorial run`` executes every notebook in ``notebooks/`` in place
(full mode) and renders ``site/``; ``make run`` calls it. With ``--quick`` (``make quick``) the
executed copies go to ``build/quick/`` and the site is rendered from them, so the committed
full-run notebooks stay as they are. The test suite uses
:func:`execute_notebook` in quick mode on copies.
"""
from __future__ import annotations

import argparse
import html
import re
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat

__all__ = ["NOTEBOOK_DIR", "execute_notebook", "notebook_paths", "render_site", "summary_of"]

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = ROOT / "notebooks"
SITE_DIR = ROOT / "site"


def notebook_paths(folder: Path = NOTEBOOK_DIR) -> list[Path]:
    """The numbered notebooks (``NN_*.ipynb``) of the series, in order."""
    return sorted(p for p in Path(folder).glob("[0-9][0-9]_*.ipynb"))


def execute_notebook(
    path: Path,
    *,
    quick: bool,
    timeout: int = 900,
    output: Path | None = None,
    env: dict[str, str] | None = None,
) -> float:
    """Execute a notebook top to bottom with a fresh kernel; return the seconds it took.

    ``quick`` sets ``INTERP_QUICK`` for the kernel, which otherwise inherits ``env`` (default:
    this process's environment; the tests set ``TQDM_DISABLE=1`` there to turn progress bars
    off). ``timeout`` bounds each cell. The executed notebook is written to ``output``
    (``None``: in place). Raises ``nbclient``'s ``CellExecutionError`` naming the failing cell.
    """
    from nbclient import NotebookClient

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"notebook not found: {path}")
    nb = nbformat.read(path, as_version=4)
    kernel_env = dict(os.environ if env is None else env)
    kernel_env["INTERP_QUICK"] = "1" if quick else "0"
    kernel_env["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"  # figures inline, whatever the caller uses
    start = time.perf_counter()
    client = NotebookClient(
        nb, timeout=timeout, kernel_name="python3", resources={"metadata": {"path": str(path.parent)}}
    )
    client.execute(env=kernel_env)
    seconds = time.perf_counter() - start
    nbformat.write(nb, Path(output) if output is not None else path)
    return seconds


def summary_of(nb: nbformat.NotebookNode) -> tuple[str, str]:
    """The title (first ``#`` heading) and the first sentence of the opening paragraph, as plain text."""
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        lines = cell.source.strip().splitlines()
        title = next((line.lstrip("# ").strip() for line in lines if line.startswith("# ")), "")
        paragraph: list[str] = []
        for line in lines:
            if line.startswith("#") and not paragraph:
                continue
            if not line.strip():
                if paragraph:
                    break
                continue
            paragraph.append(line.strip())
        text = re.sub(r"[*`_]{1,2}([^*`_]+)[*`_]{1,2}", r"\1", " ".join(paragraph))
        match = re.match(r"(.+?[.?!])(\s|$)", text)
        return title, (match.group(1) if match else text)
    return "", ""


def _first_figure(nb: nbformat.NotebookNode) -> tuple[str, str] | None:
    """``(mime type, base64 data)`` of the notebook's first PNG or JPEG figure."""
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") not in ("display_data", "execute_result"):
                continue
            for mime in ("image/png", "image/jpeg"):
                data = out.get("data", {}).get(mime)
                if data:
                    return mime, data if isinstance(data, str) else "".join(data)
    return None


@dataclass
class _Page:
    source: Path
    html_name: str
    title: str
    summary: str
    thumbnail: tuple[str, str] | None


_INDEX = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Interpreting image classifiers: a hands-on series</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body {{ font-family: system-ui, sans-serif; max-width: 980px; margin: 2em auto; padding: 0 1em; color: #222; }}
h1 {{ margin-bottom: 0.2em; }} .lead {{ color: #555; margin-top: 0; }}
ol.toc {{ list-style: none; padding: 0; }}
ol.toc li {{ display: flex; gap: 1em; align-items: center; border: 1px solid #ddd; border-radius: 8px;
  padding: 0.8em; margin: 0.8em 0; }}
ol.toc img {{ width: 220px; height: 140px; object-fit: cover; border-radius: 4px; background: #f3f3f3; }}
ol.toc a {{ font-size: 1.15em; font-weight: 600; text-decoration: none; color: #1a5fb4; }}
.meta {{ color: #666; font-size: 0.9em; }}
</style></head><body>
<h1>Interpreting image classifiers</h1>
<p class="lead">A numbered, executed notebook series: SmoothGrad from scratch, SHAP's expected gradients,
explanations across network depth, tree models, and checks of whether the explanations are right.
Every page below was executed top to bottom by <code>make run</code>; figures are embedded, so the pages read offline.</p>
<ol class="toc">
{items}
</ol>
<p class="meta">Rendered {when}.</p>
</body></html>
"""


_WIDGET = "application/vnd.jupyter.widget-view+json"


def _without_widgets(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Drop widget outputs (tqdm progress bars): live in Jupyter, but a static page can only show
    their text fallback, which is the bar's first frame ("0%")."""
    for cell in nb.cells:
        if cell.get("outputs"):
            cell.outputs = [o for o in cell.outputs if _WIDGET not in o.get("data", {})]
    return nb


def render_site(notebooks: list[Path] | None = None, site: Path = SITE_DIR) -> Path:
    """Render each notebook to HTML (figures embedded as data URIs) plus an ``index.html``; return its path.

    Progress-bar widgets are left out of the pages (see :func:`_without_widgets`).
    """
    from nbconvert import HTMLExporter

    notebooks = notebook_paths() if notebooks is None else [Path(p) for p in notebooks]
    site = Path(site)
    site.mkdir(parents=True, exist_ok=True)
    exporter = HTMLExporter(template_name="lab")
    pages = []
    for path in notebooks:
        nb = _without_widgets(nbformat.read(path, as_version=4))
        body, _ = exporter.from_notebook_node(nb)
        name = path.stem + ".html"
        (site / name).write_text(body, encoding="utf-8")
        title, summary = summary_of(nb)
        pages.append(_Page(path, name, title or path.stem, summary, _first_figure(nb)))
    items = []
    for page in pages:
        thumb = (
            f'<img alt="first figure of {html.escape(page.title)}" '
            f'src="data:{page.thumbnail[0]};base64,{page.thumbnail[1].strip()}">'
            if page.thumbnail else '<img alt="no figure">'
        )
        items.append(
            f'<li>{thumb}<div><a href="{html.escape(page.html_name)}">{html.escape(page.title)}</a>'
            f'<p>{html.escape(page.summary)}</p><p class="meta">{html.escape(page.source.name)}</p></div></li>'
        )
    index = site / "index.html"
    index.write_text(_INDEX.format(items="\n".join(items), when=time.strftime("%Y-%m-%d %H:%M")), encoding="utf-8")
    return index


def _main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m interp_helpers.tutorial", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="execute every notebook in place, then render site/")
    run.add_argument("--quick", action="store_true", help="quick mode (INTERP_QUICK=1)")
    run.add_argument("--timeout", type=int, default=900, help="seconds allowed per cell")
    run.add_argument("notebooks", nargs="*", type=Path, help="notebooks to execute (default: all)")
    sub.add_parser("render", help="render site/ from the notebooks as they are")
    args = parser.parse_args(argv)
    rendered = None
    if args.command == "run":
        paths = args.notebooks or notebook_paths()
        # a quick run never overwrites the committed (full-run) notebooks: it writes to build/quick/
        out_dir = ROOT / "build" / "quick" if args.quick else None
        if out_dir is not None:
            out_dir.mkdir(parents=True, exist_ok=True)
        outputs = []
        total = 0.0
        for path in paths:
            print(f"executing {path.name} ...", flush=True)
            output = None if out_dir is None else out_dir / path.name
            seconds = execute_notebook(path, quick=args.quick, timeout=args.timeout, output=output)
            outputs.append(path if output is None else output)
            total += seconds
            print(f"  {path.name}: {seconds:.0f} s", flush=True)
        print(f"all notebooks: {total:.0f} s")
        if out_dir is not None:
            rendered = outputs
    index = render_site(rendered)
    print(f"Tutorial rendered: open {index} in a browser (file://{index.resolve()})")
    return 0


if __name__ == "__main__":
    sys.exit(_main())
