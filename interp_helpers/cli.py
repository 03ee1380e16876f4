"""Command line: ``python -m interp_helpers explain IMAGE [--model M] [--method M] [--target C | --top-k K]``
writes one figure, the photo with its top classes and one map per explained class (``--help``: every option).
Errors (bad path, non-image, unknown model, ...) print one line on stderr and exit non-zero."""
from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path

from matplotlib.figure import Figure

from ._common import DEFAULT_SEED
from .images import example_images, load_image, make_background
from .methods import expected_gradients, gradient, smoothgrad
from .models import MODEL_NAMES, load_model, predict
from .plots import show_image, show_overlay


class _Parser(argparse.ArgumentParser):  # usage errors: one line on stderr, exit status 2
    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"error: {message} (see --help)\n")


def _parser() -> argparse.ArgumentParser:
    parser = _Parser(prog="python -m interp_helpers", description="Explain an image classifier's prediction.")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)
    ex = sub.add_parser("explain", help="write one figure: the photo, its top classes and a map per class")
    ex.add_argument("image", metavar="IMAGE", help="a path, an http(s) URL or a bundled example name (e.g. chelsea)")
    ex.add_argument("--model", default="efficientnet_lite0", choices=MODEL_NAMES,
                    help="image model (default: efficientnet_lite0, whose weights ship offline)")
    ex.add_argument("--method", default="smoothgrad", choices=("gradient", "smoothgrad", "expected_gradients"),
                    help="attribution method (default: smoothgrad)")
    which = ex.add_mutually_exclusive_group()
    which.add_argument("--target", metavar="CLASS",
                       help="explain this class: an ImageNet index (0-999) or an exact label such as 'tiger cat'")
    which.add_argument("--top-k", type=int, default=3, metavar="K", help="explain the K most likely classes (3)")
    ex.add_argument("--n-samples", type=int, default=50, metavar="N",
                    help="noisy copies (smoothgrad) or draws (expected_gradients, against random crops of the "
                         "bundled photos); default 50")
    ex.add_argument("--noise-level", type=float, default=0.15, help="SmoothGrad noise, fraction of the input range")
    ex.add_argument("--seed", type=int, default=DEFAULT_SEED, help=f"random seed (default {DEFAULT_SEED})")
    ex.add_argument("--out", type=Path, default=None, metavar="FILE.png",
                    help="where to write the figure (default: <image name>_<method>.png)")
    ex.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    return parser


def _explain(args: argparse.Namespace) -> Path:
    if args.n_samples < 1 or not 1 <= args.top_k <= 10:
        raise ValueError(f"--n-samples must be >= 1 and --top-k in [1, 10], got {args.n_samples} and {args.top_k}")
    out = args.out or Path(f"{Path(str(args.image)).stem}_{args.method}.png")
    if out.suffix.lower() != ".png":
        raise ValueError(f"--out must name a .png file, got {out}")
    image, model = load_image(args.image), load_model(args.model, device=args.device)
    ranking = predict(model, image, top_k=model.num_classes)
    labels, wanted = [c.lower() for c in model.categories], (args.target or "").strip().lower()
    if args.target is None:
        classes = [p.index for p in ranking[: args.top_k]]
    elif wanted.isdigit() and int(wanted) < model.num_classes:
        classes = [int(wanted)]
    elif wanted in labels:
        classes = [labels.index(wanted)]
    else:
        raise ValueError(f"--target {args.target!r}: neither a class index below {model.num_classes} nor a label")
    keywords: dict = {} if args.method == "gradient" else {"n_samples": args.n_samples, "seed": args.seed}
    if args.method == "smoothgrad":
        keywords["noise_level"] = args.noise_level
    elif args.method == "expected_gradients":  # background: random crops of the other bundled photos
        others = [e.name for e in example_images() if e.name != args.image]
        keywords["background"] = make_background(model, 16, images=others, seed=args.seed)
    method = {"gradient": gradient, "smoothgrad": smoothgrad, "expected_gradients": expected_gradients}[args.method]
    x = model.preprocess(image)
    maps = [method(model, x, c, **keywords) for c in classes]  # every method: method(model, inputs, target, **kw)
    photo = model.display(image)
    fig = Figure(figsize=(3.2 * (len(classes) + 1), 3.6), layout="constrained")  # no pyplot: no GUI backend
    axes = fig.subplots(1, len(classes) + 1)
    show_image(photo, ax=axes[0], title="input")
    axes[0].set_xlabel("\n".join(f"{p.label}: {p.probability:.1%}" for p in ranking[:3]), fontsize=8)
    for ax, c, attribution in zip(axes[1:], classes, maps):
        probability = next(p.probability for p in ranking if p.index == c)
        show_overlay(photo, attribution[0], ax=ax, title=f"{model.categories[c]} (p={probability:.1%})")
    fig.suptitle(f"{model.name} - {args.method}" + (f" (n={args.n_samples})" if args.method != "gradient" else ""))
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of ``python -m interp_helpers``; returns the exit status."""
    args = _parser().parse_args(argv)
    try:
        out = _explain(args)
    except KeyboardInterrupt:
        print("interrupted", file=sys.stderr)
        return 130
    except (ValueError, TypeError, OSError, RuntimeError) as exc:  # one line, no traceback
        print(f"error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 2 if isinstance(exc, (ValueError, TypeError)) else 1
    print(f"wrote {out}")
    return 0
