"""Command line: explain one's own photo.

    python -m interp_helpers explain IMAGE [--model NAME] [--method gradient|smoothgrad|expected_gradients]
                                           [--target CLASS | --top-k K] [--n-samples N] [--out FILE.png]

Writes one figure: the photo with its top classes, and one map per explained class.
Errors (bad path, non-image, unknown model, ...) print one line on stderr and exit non-zero.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Sequence

__all__ = ["main"]

METHODS = ("gradient", "smoothgrad", "expected_gradients")


class _Parser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line on stderr (exit status 2)."""

    def error(self, message: str):  # type: ignore[override]
        self.exit(2, f"error: {message} (see --help)\n")


def _parser() -> argparse.ArgumentParser:
    from .models import MODEL_NAMES

    parser = _Parser(
        prog="python -m interp_helpers",
        description="Explain an image classifier's prediction on a photo.",
    )
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND", parser_class=_Parser)
    ex = sub.add_parser(
        "explain", help="write a figure explaining the model's top classes for IMAGE",
        description="Write one figure: the photo, its top classes and a saliency map per class.",
    )
    ex.add_argument("image", metavar="IMAGE", help="a path, an http(s) URL or a bundled example name (e.g. chelsea)")
    ex.add_argument("--model", default="efficientnet_lite0", choices=MODEL_NAMES,
                    help="image model (default: efficientnet_lite0, whose weights ship offline)")
    ex.add_argument("--method", default="smoothgrad", choices=METHODS, help="attribution method (default: smoothgrad)")
    which = ex.add_mutually_exclusive_group()
    which.add_argument("--target", metavar="CLASS",
                       help="explain this class: an ImageNet index (0-999) or an exact label such as 'tiger cat'")
    which.add_argument("--top-k", type=int, default=3, metavar="K", help="explain the K most likely classes (default 3)")
    ex.add_argument("--n-samples", type=int, default=50, metavar="N",
                    help="noisy copies (smoothgrad) or draws (expected_gradients; background: random crops "
                         "of the bundled example photos); default 50")
    ex.add_argument("--noise-level", type=float, default=0.15, help="SmoothGrad noise, fraction of the input range (0.15)")
    ex.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    ex.add_argument("--out", type=Path, default=None, metavar="FILE.png",
                    help="where to write the figure (default: <image name>_<method>.png)")
    ex.add_argument("--device", default=None, help="torch device (default: cuda if available, else cpu)")
    return parser


def _resolve_target(target: str, categories: list[str]) -> int:
    if target.strip().isdigit():
        index = int(target)
        if not 0 <= index < len(categories):
            raise ValueError(f"--target {target}: class index must be in [0, {len(categories)})")
        return index
    matches = [i for i, c in enumerate(categories) if c.lower() == target.strip().lower()]
    if not matches:
        raise ValueError(f"--target {target!r}: no ImageNet class has this label")
    return matches[0]


def _explain(args: argparse.Namespace) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from .attribution.backgrounds import make_background
    from .attribution.expected_gradients import expected_gradients
    from .attribution.gradient import gradient
    from .attribution.noise import smoothgrad
    from .images import example_images, load_image
    from .models import load_model, predict
    from .plotting.maps import show_image, show_overlay

    if args.n_samples < 1:
        raise ValueError(f"--n-samples must be >= 1, got {args.n_samples}")
    if args.top_k is not None and not 1 <= args.top_k <= 10:
        raise ValueError(f"--top-k must be between 1 and 10, got {args.top_k}")
    out = args.out or Path(f"{Path(str(args.image)).stem}_{args.method}.png")
    if out.suffix.lower() != ".png":
        raise ValueError(f"--out must name a .png file, got {out}")
    image = load_image(args.image)
    model = load_model(args.model, device=args.device)
    ranking = predict(model, image, top_k=model.num_classes)
    probs = {p.index: p.probability for p in ranking}
    if args.target is not None:
        classes = [_resolve_target(args.target, model.categories)]
    else:
        classes = [p.index for p in ranking[: args.top_k]]
    x = model.preprocess(image)
    maps = []
    background = None
    if args.method == "expected_gradients":  # random crops of the bundled photos, the explained one left out
        others = [e.name for e in example_images() if e.name != args.image]
        background = make_background(model, 16, images=others, seed=args.seed)
    for c in classes:
        if args.method == "gradient":
            maps.append(gradient(model, x, c))
        elif args.method == "smoothgrad":
            maps.append(smoothgrad(model, x, c, n_samples=args.n_samples, noise_level=args.noise_level,
                                   seed=args.seed, progress=True))
        else:
            maps.append(expected_gradients(model, x, c, background=background, n_samples=args.n_samples, seed=args.seed))
    photo = model.display(image)
    fig, axes = plt.subplots(1, len(classes) + 1, figsize=(3.2 * (len(classes) + 1), 3.6), layout="constrained")
    show_image(photo, ax=axes[0], title="input")
    axes[0].set_xlabel("\n".join(f"{p.label}: {p.probability:.1%}" for p in ranking[:3]), fontsize=8)
    for ax, c, attribution in zip(axes[1:], classes, maps):
        show_overlay(photo, attribution[0], ax=ax,
                              title=f"{model.categories[c]} (p={probs[c]:.1%})")
    fig.suptitle(f"{model.name} - {args.method}" + (f" (n={args.n_samples})" if args.method != "gradient" else ""))
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=120)
    plt.close(fig)
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
        message = " ".join(str(exc).split())
        print(f"error: {message}", file=sys.stderr)
        return 2 if isinstance(exc, (ValueError, TypeError)) else 1
    print(f"wrote {out}")
    return 0
