"""Reliability sweep over the whole public API.

* every function exported by ``interp_helpers`` (its ``__all__``) has bad-input cases here, and each one raises a
  clear error whose message names the argument (a new public function without a case fails
  :func:`test_every_public_function_is_swept`);
* interrupting long work (``KeyboardInterrupt`` from inside the model) leaves no hooks and no
  changed state on the model;
* an unreachable host fails fast, and loading never executes pickled code (see also
  ``test_images.py`` and ``test_models.py``).
"""
from __future__ import annotations

import inspect
import socket
import time

import numpy as np
import pytest
import torch
from torch import nn

import interp_helpers as ih
from interp_helpers.hooks import model_fingerprint

ERRORS = (ValueError, TypeError, FileNotFoundError, OSError, KeyError)


class Tiny(nn.Module):
    """A small ReLU CNN on (3, 16, 16) inputs with 10 classes and named stages."""

    def __init__(self):
        super().__init__()
        self.stage1 = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU())
        self.stage2 = nn.Sequential(nn.Conv2d(4, 4, 3, padding=1, stride=2), nn.ReLU())
        self.head = nn.Sequential(nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(4, 10))

    def forward(self, x):
        return self.head(self.stage2(self.stage1(x)))


class Interrupting(Tiny):
    """Raises KeyboardInterrupt on its ``fail_at``-th forward call."""

    def __init__(self, fail_at: int):
        super().__init__()
        self.calls = 0
        self.fail_at = fail_at

    def forward(self, x):
        self.calls += 1
        if self.calls == self.fail_at:
            raise KeyboardInterrupt
        return super().forward(x)


torch.manual_seed(0)  # test-module fixtures only; the library never seeds globally
MODEL = Tiny().eval()
X = torch.rand(2, 3, 16, 16)
BG = torch.rand(3, 3, 16, 16)
ATTR = torch.rand(2, 3, 16, 16)
NAN = torch.full((1, 3, 16, 16), float("nan"))


def _fit():
    X_, y_ = ih.load_boston()
    return ih.train_catboost(X_.iloc[:120], y_.iloc[:120], iterations=5, seed=0)


# (function name) -> list of (call, expected message fragment)
BAD_CALLS = {
    "load_model": [(lambda: ih.load_model("alexnet"), "name"),
                   (lambda: ih.load_model("efficientnet_lite0", weights=1.5), "weights")],
    "load_image": [(lambda: ih.load_image("/nonexistent/photo.jpg"), "photo.jpg"),
                   (lambda: ih.load_image(np.zeros((5, 5, 2))), "shape"),
                   (lambda: ih.load_image("chelsea", timeout=-1), "timeout")],
    "example_images": [],  # takes no arguments
    "load_boston": [(lambda: ih.load_boston("/nonexistent/boston.csv"), "boston.csv")],
    "predict": [(lambda: ih.predict(MODEL, X), "model")],
    "setup_notebook": [(lambda: ih.setup_notebook("vgg"), "default_model"),
                       (lambda: ih.setup_notebook(None, seed=-1), "seed")],
    "gradient": [(lambda: ih.gradient(MODEL, X[0], 0), "4-D"),
                 (lambda: ih.gradient(MODEL, X, 10), "target"),
                 (lambda: ih.gradient("model", X, 0), "model")],
    "gradient_x_input": [(lambda: ih.gradient_x_input(MODEL, NAN, 0), "NaN"),
                         (lambda: ih.gradient_x_input(MODEL, X, [1, 2, 3]), "target")],
    "smoothgrad": [(lambda: ih.smoothgrad(MODEL, X, 0, n_samples=0), "n_samples"),
                   (lambda: ih.smoothgrad(MODEL, X, 0, noise_level=-0.1), "noise_level"),
                   (lambda: ih.smoothgrad(MODEL, X, 0, variant="median"), "variant"),
                   (lambda: ih.smoothgrad(MODEL, X, 0, batch_size=0), "batch_size"),
                   (lambda: ih.smoothgrad(MODEL, X, 0, seed=-3), "seed")],
    "expected_gradients": [(lambda: ih.expected_gradients(MODEL, X, 0, background=BG[:, :1]), "background"),
                           (lambda: ih.expected_gradients(MODEL, X, 0, background=BG[:0]), "background"),
                           (lambda: ih.expected_gradients(MODEL, X, 0, background=BG, layer=nn.ReLU()), "layer"),
                           (lambda: ih.expected_gradients(MODEL, X, 0, background=BG, layer=MODEL.stage1,
                                                          attribute_to="weights"), "attribute_to"),
                           (lambda: ih.expected_gradients(MODEL, X, 0, background=BG, n_samples=0), "n_samples")],
    "make_background": [(lambda: ih.make_background(MODEL, 4), "model"),
                        (lambda: ih.make_background(ih.load_model("efficientnet_lite0", weights=None), 0), "n")],
    "blurred_copies": [(lambda: ih.blurred_copies(X, []), "sigmas"),
                       (lambda: ih.blurred_copies(X, [-1.0]), "sigmas")],
    "deletion_curve": [(lambda: ih.deletion_curve(MODEL, X, 0, ATTR[:1]), "attribution"),
                       (lambda: ih.deletion_curve(MODEL, X, 0, ATTR, steps=0), "steps"),
                       (lambda: ih.deletion_curve(MODEL, X, 0, ATTR, baseline="noise"), "baseline")],
    "insertion_curve": [(lambda: ih.insertion_curve(MODEL, X, 0, ATTR, reduction="max"), "reduction"),
                        (lambda: ih.insertion_curve(MODEL, X, 11, ATTR), "target")],
    "randomization_test": [(lambda: ih.randomization_test(MODEL, X, 0, "gradient"), "explain"),
                           (lambda: ih.randomization_test(MODEL, X, 0, ih.gradient, stages={"x": "nope"}),
                            "stages")],
    "train_catboost": [(lambda: ih.train_catboost(*ih.load_boston(), test_size=1.5), "test_size"),
                       (lambda: ih.train_catboost(ih.load_boston()[0], ih.load_boston()[1] * np.nan), "y")],
    "tree_shap": [(lambda: ih.tree_shap(_fit().model, ih.load_boston()[0].drop(columns="RM")), "RM")],
    "compare_baselines": [(lambda: ih.compare_baselines("fit"), "fit")],
    "check_shap_against_catboost": [(lambda: ih.check_shap_against_catboost(None, ih.load_boston()[0]), "model")],
    "importance_table": [(lambda: ih.importance_table(_fit().model, *ih.load_boston(), n_repeats=0), "n_repeats")],
    "regression_metrics": [(lambda: ih.regression_metrics([1.0, 2.0], [1.0]), "y_")],
    "brute_force_tree_shap": [(lambda: ih.brute_force_tree_shap(None, ih.load_boston()[0]), "model")],
    "mean_abs_shap": [(lambda: ih.mean_abs_shap("result"), "result")],
    "mean_abs_interactions": [(lambda: ih.mean_abs_interactions("result"), "result")],
    "strongest_interactions": [(lambda: ih.strongest_interactions("result"), "result")],
    "plot_bar": [(lambda: ih.plot_bar("result"), "result")],
    "plot_beeswarm": [(lambda: ih.plot_beeswarm("result"), "result")],
    "plot_dependence": [(lambda: ih.plot_dependence("result", "RM"), "result")],
    "plot_force": [(lambda: ih.plot_force("result", 0), "result")],
    "plot_waterfall": [(lambda: ih.plot_waterfall("result", 0), "result")],
    "plot_importance_comparison": [(lambda: ih.plot_importance_comparison("table"), "table")],
    "plot_interaction_heatmap": [(lambda: ih.plot_interaction_heatmap("matrix"), "matrix")],
    "add_noise": [(lambda: ih.add_noise(X, -0.1, seed=0), "noise_level"),
                  (lambda: ih.add_noise(X, 0.15, seed=-1), "seed"),
                  (lambda: ih.add_noise(X, 0.15, seed=0, sample_index=-1), "sample_index")],
    "noise_tunnel": [(lambda: ih.noise_tunnel(ih.gradient, MODEL, X, 0, n_samples=[5, 2]), "n_samples"),
                     (lambda: ih.noise_tunnel("gradient", MODEL, X, 0), "explain")],
    "auc_table": [(lambda: ih.auc_table("curves"), "curves")],
    "randomization_table": [(lambda: ih.randomization_table({}, metric="x"), "metric")],
    "plot_curves": [(lambda: ih.plot_curves({}), "curves")],
    "plot_randomization": [(lambda: ih.plot_randomization({}, metric="x"), "results")],
    "image_grid": [(lambda: ih.image_grid(0, 1), "nrows")],
    "normalize_map": [(lambda: ih.normalize_map(np.ones((4, 4)), percentile=150), "percentile")],
    "reduce_channels": [(lambda: ih.reduce_channels(np.ones((3, 4, 4)), reduction="median"), "reduction")],
    "show_image": [(lambda: ih.show_image(np.ones((4, 4, 5))), "image")],
    "show_heatmap": [(lambda: ih.show_heatmap(np.ones((3, 4, 4)), percentile=-1), "percentile")],
    "show_overlay": [(lambda: ih.show_overlay(np.ones((8, 8, 3)), np.ones((3, 4, 4))), "attribution")],
    "show_diverging": [(lambda: ih.show_diverging(np.ones((3, 4, 4)), reduction="nope"), "reduction")],
    "scale_bar": [(lambda: ih.scale_bar(None, None), "fig")],
}


def _public_functions() -> set[str]:
    return {n for n in ih.__all__ if inspect.isfunction(getattr(ih, n))}


def test_every_public_function_is_swept():
    missing = _public_functions() - set(BAD_CALLS)
    assert not missing, f"public functions without bad-input cases: {sorted(missing)}"


CASES = [(name, i, call, needle) for name, calls in BAD_CALLS.items() for i, (call, needle) in enumerate(calls)]


@pytest.mark.parametrize("name,i,call,needle", CASES, ids=[f"{c[0]}-{c[1]}" for c in CASES])
def test_bad_input_raises_a_clear_error(name, i, call, needle):
    before = model_fingerprint(MODEL)
    with pytest.raises(ERRORS) as err:
        call()
    assert needle in str(err.value), f"{name}: {err.value!r} does not name {needle!r}"
    assert model_fingerprint(MODEL) == before


INTERRUPTIBLE = {
    "gradient": lambda m: ih.gradient(m, torch.cat([X, X]), 0, batch_size=1),
    "smoothgrad": lambda m: ih.smoothgrad(m, X, [0, 1], n_samples=8, batch_size=2, seed=0),
    "expected_gradients": lambda m: ih.expected_gradients(m, X, 0, background=BG, n_samples=8, batch_size=2, seed=0),
    "expected_gradients_layer": lambda m: ih.expected_gradients(m, X, 0, background=BG, layer=m.stage1, n_samples=8,
                                                                batch_size=2, seed=0),
    "deletion_curve": lambda m: ih.deletion_curve(m, X, 0, ATTR, steps=8, batch_size=2),
    "randomization_test": lambda m: ih.randomization_test(m, X, 0, ih.gradient, seed=0),
}


@pytest.mark.parametrize("name", list(INTERRUPTIBLE))
@pytest.mark.parametrize("fail_at", [1, 3])
def test_interrupting_long_work_leaves_the_model_as_found(name, fail_at):
    model = Interrupting(fail_at)
    model.train()
    model.stage2[0].weight.requires_grad_(False)
    before = model_fingerprint(model)
    with pytest.raises(KeyboardInterrupt):
        INTERRUPTIBLE[name](model)
    if name != "randomization_test":  # that one works on a deep copy, whose counter raised
        assert model.calls == fail_at
    assert model_fingerprint(model) == before
    for module in model.modules():
        assert not module._forward_hooks and not module._forward_pre_hooks and not module._backward_hooks


def test_unreachable_host_fails_fast():
    with socket.socket() as s:  # a port on this machine that nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    start = time.perf_counter()
    with pytest.raises(OSError, match=str(port)):
        ih.load_image(f"http://127.0.0.1:{port}/photo.png", timeout=2)
    assert time.perf_counter() - start < 3
