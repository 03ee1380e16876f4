"""Execute the notebook series and render it as an offline HTML site (a maintainer tool, not part of the library).

Commands (the Makefile calls them; every path can be passed in)::

    python -m tools.tutorial run [--quick] [--out DIR] [--site DIR] [NOTEBOOK ...]
        execute copies of the notebooks into DIR (default build/notebooks, or build/quick with
        --quick) and render the site from the copies: the committed notebooks stay untouched.
    python -m tools.tutorial refresh [--site DIR] [NOTEBOOK ...]
        execute the committed notebooks in place (full mode) and render the site from them:
        what a maintainer runs before committing fresh outputs (``make notebooks``).
    python -m tools.tutorial render [--from DIR] [--site DIR]
        render the site from notebooks as they are, executing nothing.

Every kernel runs torch with a bounded thread count and a passive OpenMP wait policy (see
:func:`kernel_environment` and ``tools/threads.py``); a notebook that runs past its time is stopped
and its kernel shut down (see :func:`execute_notebook`). Executed notebooks keep no progress-bar
widgets: a viewer without widgets would show their first frame ("0%|"), so they are dropped and
the notebook shows the final state of text bars or nothing (see :func:`clean_outputs`).
"""
from __future__ import annotations

import argparse
import asyncio
import base64
import html
import importlib.metadata
import inspect
import io
import os
import re
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat

from tools.threads import set_thread_defaults, torch_threads

__all__ = ["clean_outputs", "execute_notebook", "kernel_environment", "notebook_paths", "plain_text", "render_site",
           "set_thread_defaults", "summary_of", "torch_threads"]  # torch_threads: tests compare kernels' settings

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = ROOT / "notebooks"
SITE_DIR = ROOT / "site"
BUILD_DIR = ROOT / "build"
TEMPLATE_DIR = Path(__file__).resolve().parent / "site_template"

#: Seconds one cell may run before the notebook is stopped (a hung cell is caught here).
CELL_TIMEOUT = 900
_WIDGET = "application/vnd.jupyter.widget-view+json"
#: A text progress bar that stopped before 100 % (tqdm's "  0%|" ... "99%|").
FROZEN_BAR = re.compile(r"(?<![\d.])\d{1,2}%\|")


# --------------------------------------------------------------------------- executing


def notebook_paths(folder: Path = NOTEBOOK_DIR) -> list[Path]:
    """The numbered notebooks (``NN_*.ipynb``) in ``folder``, in order."""
    return sorted(p for p in Path(folder).glob("[0-9][0-9]_*.ipynb"))


def kernel_environment(base: dict[str, str] | None = None, *, quick: bool) -> dict[str, str]:
    """The environment of a notebook kernel: ``base`` (default: this process's) plus ``INTERP_QUICK`` (from
    ``quick``), the inline figure backend, and, unless ``base`` sets them, the thread defaults of
    :func:`set_thread_defaults` (they must be in the environment before the kernel imports torch).
    """
    env = dict(os.environ if base is None else base)
    env["INTERP_QUICK"] = "1" if quick else "0"
    env["MPLBACKEND"] = "module://matplotlib_inline.backend_inline"  # figures inline, whatever the caller uses
    set_thread_defaults(env)
    return env


def clean_outputs(nb: nbformat.NotebookNode) -> nbformat.NotebookNode:
    """Make outputs show what a reader without widgets should see; return ``nb`` (changed in place).

    * Widget views (tqdm's notebook bars) are dropped, with the notebook's stored widget state:
      their text fallback is the bar's *first* frame ("0%|"), frozen.
    * Consecutive outputs of one text stream are joined, and each line keeps only what follows
      its last carriage return, i.e. the final frame of a text progress bar, as a terminal shows it.
    """
    nb.metadata.pop("widgets", None)
    for cell in nb.cells:
        if cell.cell_type != "code":
            continue
        kept: list = []
        for out in cell.get("outputs", []):
            if _WIDGET in out.get("data", {}):
                continue
            if (out.get("output_type") == "stream" and kept and kept[-1].get("output_type") == "stream"
                    and kept[-1].get("name") == out.get("name")):
                kept[-1]["text"] += out["text"]  # one stream, as a terminal would show it
                continue
            kept.append(out)
        for out in kept:
            if out.get("output_type") == "stream":
                out["text"] = re.sub(r"[^\n]*\r(?!\n)", "", out["text"])
        cell.outputs = kept
    return nb


def execute_notebook(
    path: Path,
    *,
    quick: bool,
    output: Path | None = None,
    cell_timeout: int = CELL_TIMEOUT,
    total_timeout: float | None = None,
    env: dict[str, str] | None = None,
) -> float:
    """Execute a notebook top to bottom with a fresh kernel; return the seconds it took.

    Args:
        path: the notebook.
        quick: quick mode (``INTERP_QUICK=1``) or full mode.
        output: where the executed notebook goes (``None``: back to ``path``). Outputs are
            cleaned first (:func:`clean_outputs`). Nothing is written when execution fails.
        cell_timeout: seconds one cell may run (nbclient's ``CellTimeoutError`` after that).
        total_timeout: seconds the whole notebook may run, kernel start included (``None``: no
            limit); past it, ``TimeoutError``.
        env: the kernel's environment before :func:`kernel_environment` adds to it
            (default: this process's).

    Uses nbclient's public API only: ``NotebookClient.async_execute`` runs in its own event loop
    (``asyncio.run``), with ``asyncio.wait_for`` for the total time. However execution ends -- success,
    a failing cell, a timeout, or an exception raised in this process while the kernel runs (e.g. by
    pytest-timeout's alarm) -- the execution task is cancelled or finishes, and nbclient's own clean-up
    (``setup_kernel``'s ``finally``, ``shutdown_kernel="immediate"``) shuts the kernel down.
    """
    from nbclient import NotebookClient
    from nbclient.exceptions import DeadKernelError

    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"notebook not found: {path}")
    for name, value in (("cell_timeout", cell_timeout), ("total_timeout", total_timeout)):
        if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float)) or value <= 0):
            raise ValueError(f"{name} must be a positive number of seconds, got {value!r}")
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(nb, timeout=cell_timeout, kernel_name="python3", shutdown_kernel="immediate",
                            resources={"metadata": {"path": str(path.parent)}})

    async def run() -> None:
        try:
            await asyncio.wait_for(client.async_execute(env=kernel_environment(env, quick=quick)), total_timeout)
        except DeadKernelError:  # nbclient reports a cancelled cell as a dead kernel
            if asyncio.current_task().cancelling():  # cancelled from outside (an exception in this process)
                raise asyncio.CancelledError from None
            raise

    start = time.perf_counter()
    try:
        asyncio.run(run())
    except (TimeoutError, DeadKernelError) as exc:
        if total_timeout is not None and time.perf_counter() - start >= total_timeout:
            raise TimeoutError(
                f"{path.name} did not finish within total_timeout={total_timeout} s; its kernel was shut down"
            ) from exc
        raise
    seconds = time.perf_counter() - start
    nbformat.write(clean_outputs(nb), Path(output) if output is not None else path)
    return seconds


# --------------------------------------------------------------------------- rendering

_MARKUP = re.compile(r"(?<![\w*`])(\*\*|__|\*|_|`)(?=\S)(.+?)(?<=\S)\1(?![\w*`])")
_LINK = re.compile(r"\[([^\]]+)\]\([^)]*\)")


def plain_text(markdown: str) -> str:
    """Markdown emphasis, code marks and links reduced to their text; ``load_model`` stays ``load_model``."""
    text = _LINK.sub(r"\1", markdown)
    previous = None
    while previous != text:
        previous, text = text, _MARKUP.sub(r"\2", text)
    return text


def summary_of(nb: nbformat.NotebookNode) -> tuple[str, str]:
    """``(title, summary)``: the first ``#`` heading, and ``nb.metadata["interp"]["summary"]``

    (what the notebook teaches, written by its author) or, failing that, the first sentence of
    the opening paragraph, as plain text.
    """
    title, first = "", ""
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
        text = plain_text(" ".join(paragraph))
        match = re.match(r"(.+?[.?!])(\s|$)", text)
        first = match.group(1) if match else text
        break
    stored = nb.metadata.get("interp", {}).get("summary", "")
    return plain_text(title), plain_text(stored.strip()) if isinstance(stored, str) and stored.strip() else first


def _first_figure(nb: nbformat.NotebookNode) -> bytes | None:
    """The bytes of the notebook's first PNG or JPEG figure."""
    for cell in nb.cells:
        for out in cell.get("outputs", []):
            if out.get("output_type") not in ("display_data", "execute_result"):
                continue
            for mime in ("image/png", "image/jpeg"):
                data = out.get("data", {}).get(mime)
                if data:
                    return base64.b64decode(data if isinstance(data, str) else "".join(data))
    return None


def _thumbnail(figure: bytes, target: Path, size: tuple[int, int] = (440, 280)) -> None:
    """A small JPEG of ``figure``, cropped to ``size``'s aspect ratio from the top left (titles, first panels)."""
    from PIL import Image

    with Image.open(io.BytesIO(figure)) as im:
        im = im.convert("RGB")
        ratio = size[0] / size[1]
        w, h = im.size
        crop = (w, int(w / ratio)) if w / h < ratio else (int(h * ratio), h)
        im = im.crop((0, 0, crop[0], crop[1])).resize(size, Image.LANCZOS)
        im.save(target, "JPEG", quality=72, optimize=True)


def _mathjax_dir() -> Path:
    import jupyter_server_mathjax

    return Path(jupyter_server_mathjax.__file__).resolve().parent / "static"


def _copy_mathjax(site: Path) -> str:
    """Copy MathJax 2 (from the ``jupyter-server-mathjax`` wheel) into ``site/mathjax``; return its script URL."""
    target = site / "mathjax"
    stamp = target / ".version"
    version = importlib.metadata.version("jupyter-server-mathjax")
    if not (stamp.is_file() and stamp.read_text() == version):
        shutil.rmtree(target, ignore_errors=True)
        shutil.copytree(_mathjax_dir(), target)
        stamp.write_text(version)
    return "mathjax/MathJax.js?config=TeX-AMS-MML_HTMLorMML-full,Safe"


@dataclass
class _Page:
    source: Path
    html_name: str
    title: str
    summary: str
    thumbnail: str | None


_CSS = """
body { font-family: system-ui, sans-serif; max-width: 980px; margin: 2em auto; padding: 0 1em; color: #222; }
h1 { margin-bottom: 0.2em; } .lead { color: #555; margin-top: 0; }
ol.toc { list-style: none; padding: 0; }
ol.toc li { display: flex; gap: 1em; align-items: center; border: 1px solid #ddd; border-radius: 8px;
  padding: 0.8em; margin: 0.8em 0; }
ol.toc img { width: 220px; height: 140px; object-fit: cover; border-radius: 4px; background: #f3f3f3; }
ol.toc a { font-size: 1.15em; font-weight: 600; text-decoration: none; color: #1a5fb4; }
.meta { color: #666; font-size: 0.9em; }
nav.series { display: flex; justify-content: space-between; gap: 1em; margin: 1em 0; font-size: 0.95em; }
nav.series a { color: #1a5fb4; text-decoration: none; }
pre.doc { white-space: pre-wrap; background: #f6f8fa; padding: 0.6em; border-radius: 4px; }
h3 code { font-size: 1em; }
"""

_INDEX = """<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>Interpreting image classifiers: a hands-on series</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>{css}</style></head><body>
<h1>Interpreting image classifiers</h1>
<p class="lead">A numbered, executed notebook series: SmoothGrad from scratch, SHAP's expected gradients,
explanations across network depth, tree models, and checks of whether the explanations are right.
Every page below was executed top to bottom; figures are embedded, so the pages read offline.</p>
<ol class="toc">
{items}
</ol>
<p><a href="{api}">The helper API</a>: every public function of <code>interp_helpers</code>, from its docstring.</p>
<p class="meta">Rendered {when}.</p>
</body></html>
"""


def _nav(prev: tuple[str, str] | None, nxt: tuple[str, str] | None) -> str:
    """Previous / contents / next links (``(href, label)`` pairs)."""
    left = f'<a rel="prev" href="{html.escape(prev[0])}">&larr; {html.escape(prev[1])}</a>' if prev else "<span></span>"
    right = f'<a rel="next" href="{html.escape(nxt[0])}">{html.escape(nxt[1])} &rarr;</a>' if nxt else "<span></span>"
    return f'<nav class="series">{left}<a href="index.html">Contents</a>{right}</nav>'


def _api_page(nav: str) -> str:
    """One page documenting every name in ``interp_helpers.__all__`` from its signature and docstring."""
    import interp_helpers

    sections: dict[str, list[str]] = {}
    for name in interp_helpers.__all__:
        obj = getattr(interp_helpers, name)
        module = getattr(obj, "__module__", None) or "interp_helpers"
        if not module.startswith("interp_helpers"):
            module = "interp_helpers"
        try:
            signature = str(inspect.signature(obj)) if callable(obj) else ""
        except (TypeError, ValueError):
            signature = ""
        kind = "class" if inspect.isclass(obj) else ("function" if callable(obj) else "constant")
        doc = inspect.getdoc(obj) if kind != "constant" else f"= {obj!r}"
        entry = (f'<h3 id="{html.escape(name)}"><code>{html.escape(name)}{html.escape(signature)}</code>'
                 f' <span class="meta">{kind}</span></h3>\n'
                 f'<pre class="doc">{html.escape(doc or "(no docstring)")}</pre>')
        sections.setdefault(module, []).append(entry)
    toc = " · ".join(f'<a href="#{html.escape(n)}">{html.escape(n)}</a>' for n in interp_helpers.__all__)
    body = "\n".join(f"<h2><code>{html.escape(m)}</code></h2>\n" + "\n".join(es) for m, es in sections.items())
    return ('<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8">'
            '<title>interp_helpers: the helper API</title>'
            f'<meta name="viewport" content="width=device-width, initial-scale=1"><style>{_CSS}</style></head><body>'
            f"{nav}<h1>The helper API</h1><p class=\"lead\">Every name in <code>interp_helpers.__all__</code>, "
            "with its signature and docstring (import them with <code>import interp_helpers as ih</code>).</p>"
            f'<p class="meta">{toc}</p>{body}{nav}</body></html>\n')


def render_site(notebooks: list[Path] | None = None, site: Path = SITE_DIR) -> Path:
    """Render each notebook to HTML plus ``index.html`` and ``api.html`` in ``site``; return the index's path.

    Pages embed their figures, typeset formulas with a local copy of MathJax (no CDN), show
    ``solution``-tagged cells collapsed, drop progress-bar widgets, and link to the previous
    and next page. The landing page shows each notebook's summary (:func:`summary_of`) and a
    small JPEG of its first figure.
    """
    from nbconvert import HTMLExporter

    notebooks = notebook_paths() if notebooks is None else [Path(p) for p in notebooks]
    if not notebooks:
        raise ValueError("no notebooks to render")
    site = Path(site)
    (site / "thumbs").mkdir(parents=True, exist_ok=True)
    exporter = HTMLExporter(template_name="interp_site", extra_template_basedirs=[str(TEMPLATE_DIR)])
    exporter.mathjax_url = _copy_mathjax(site)
    nbs = [clean_outputs(nbformat.read(p, as_version=4)) for p in notebooks]
    pages = []
    for path, nb in zip(notebooks, nbs):
        title, summary = summary_of(nb)
        figure = _first_figure(nb)
        thumb = None
        if figure is not None:
            thumb = f"thumbs/{path.stem}.jpg"
            _thumbnail(figure, site / thumb)
        pages.append(_Page(path, path.stem + ".html", title or path.stem, summary, thumb))
    api = "api.html"
    links = [("index.html", "Contents")] + [(p.html_name, p.title) for p in pages] + [(api, "The helper API")]
    back_to_start = ("index.html", "Back to the start")
    for i, (page, nb) in enumerate(zip(pages, nbs), start=1):
        nav = _nav(links[i - 1], links[i + 1])
        body, _ = exporter.from_notebook_node(nb, resources={"interp_nav": nav, "metadata": {"name": page.title}})
        (site / page.html_name).write_text(body, encoding="utf-8")
    (site / api).write_text(_api_page(_nav(links[-2], back_to_start)), encoding="utf-8")
    items = []
    for page in pages:
        thumb = (f'<img alt="first figure of {html.escape(page.title)}" src="{page.thumbnail}" '
                 'width="220" height="140">'
                 if page.thumbnail else "")
        items.append(
            f'<li>{thumb}<div><a href="{html.escape(page.html_name)}">{html.escape(page.title)}</a>'
            f'<p>{html.escape(page.summary)}</p><p class="meta">{html.escape(page.source.name)}</p></div></li>'
        )
    index = site / "index.html"
    index.write_text(_INDEX.format(css=_CSS, items="\n".join(items), api=api,
                                   when=time.strftime("%Y-%m-%d %H:%M")), encoding="utf-8")
    return index


# --------------------------------------------------------------------------- command line


def _execute_all(paths: list[Path], *, quick: bool, out_dir: Path | None, cell_timeout: int) -> list[Path]:
    outputs, total = [], 0.0
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
    for path in paths:
        print(f"executing {path.name} ({'quick' if quick else 'full'} mode) ...", flush=True)
        output = path if out_dir is None else out_dir / path.name
        seconds = execute_notebook(path, quick=quick, output=output, cell_timeout=cell_timeout)
        outputs.append(output)
        total += seconds
        print(f"  {path.name}: {seconds:.0f} s -> {output}", flush=True)
    print(f"all notebooks: {total:.0f} s")
    return outputs


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tools.tutorial", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    run = sub.add_parser("run", help="execute copies of the notebooks, then render the site from them")
    run.add_argument("--quick", action="store_true", help="quick mode (INTERP_QUICK=1)")
    run.add_argument("--out", type=Path, default=None,
                     help="folder for the executed copies (default: build/notebooks, or build/quick with --quick)")
    refresh = sub.add_parser("refresh", help="execute the committed notebooks in place (full mode), then render")
    render = sub.add_parser("render", help="render the site from notebooks as they are")
    render.add_argument("--from", dest="source", type=Path, default=NOTEBOOK_DIR,
                        help="folder of the notebooks to render (default: notebooks/)")
    for p in (run, refresh):
        p.add_argument("--cell-timeout", type=int, default=CELL_TIMEOUT, help="seconds allowed per cell")
        p.add_argument("notebooks", nargs="*", type=Path, help="notebooks to execute (default: all in notebooks/)")
    for p in (run, refresh, render):
        p.add_argument("--site", type=Path, default=SITE_DIR, help="folder of the rendered site (default: site/)")
    args = parser.parse_args(argv)
    if args.command == "run":
        out_dir = args.out or BUILD_DIR / ("quick" if args.quick else "notebooks")
        rendered = _execute_all(args.notebooks or notebook_paths(), quick=args.quick, out_dir=out_dir,
                                cell_timeout=args.cell_timeout)
    elif args.command == "refresh":
        rendered = _execute_all(args.notebooks or notebook_paths(), quick=False, out_dir=None,
                                cell_timeout=args.cell_timeout)
        if args.notebooks:  # render the whole series, not just the refreshed ones
            rendered = notebook_paths()
    else:
        rendered = notebook_paths(args.source)
    index = render_site(rendered, site=args.site)
    print(f"Tutorial rendered: open {index} in a browser (file://{index.resolve()})")
    return 0


if __name__ == "__main__":
    sys.exit(main())
