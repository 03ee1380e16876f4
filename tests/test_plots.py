"""interp_helpers.plots: what is drawn is the map as scaled, one shared scale bar, legible text, bad inputs."""
from __future__ import annotations

import importlib
import subprocess
import sys

import matplotlib
import matplotlib.pyplot as plt  # the backend is Agg (tests/conftest.py)
import numpy as np
import pytest
import torch

from interp_helpers import plots
from interp_helpers.maps import REDUCTIONS, reduce_channels
from interp_helpers.plots import (
    image_grid,
    normalize_map,
    plot_cascade_maps,
    plot_curves,
    plot_randomization,
    scale_bar,
    show_diverging,
    show_heatmap,
    show_image,
    show_overlay,
)


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


A = np.array(
    [
        [[1.0, -2.0], [0.0, 3.0]],
        [[-4.0, 1.0], [0.5, -3.0]],
        [[2.0, 0.0], [-0.5, 1.0]],
    ]
)  # (C=3, H=2, W=2)


def test_unsigned_panels_default_to_abs_sum_and_diverging_to_sum():
    import inspect

    for draw in (show_heatmap, show_overlay):
        assert inspect.signature(draw).parameters["reduction"].default == "abs_sum"
    assert inspect.signature(show_diverging).parameters["reduction"].default == "sum"
    for reduction in REDUCTIONS:  # every reduction of maps is accepted, and it is the one applied
        ax = show_heatmap(A, reduction=reduction, colorbar=False)
        np.testing.assert_allclose(ax.images[0].get_array(), normalize_map(reduce_channels(A, reduction)))


@pytest.mark.parametrize(
    "as_input",
    [
        lambda a: a,
        lambda a: torch.tensor(a),
        lambda a: torch.tensor(a, requires_grad=True) * 1.0,  # needs detach
        lambda a: a[None],
        lambda a: torch.tensor(a)[None],
    ],
)
def test_accepts_tensors_arrays_and_shapes(as_input):
    ax = show_heatmap(as_input(A), reduction="max_abs", colorbar=False)
    np.testing.assert_allclose(ax.images[0].get_array(), normalize_map(np.array([[4.0, 2.0], [0.5, 3.0]])))


def test_two_d_map_is_one_channel():
    m = np.array([[1.0, -2.0], [3.0, 0.0]])
    np.testing.assert_allclose(show_diverging(m).images[0].get_array(), normalize_map(m, signed=True))
    np.testing.assert_allclose(show_heatmap(torch.tensor(m), reduction="max_abs").images[0].get_array(),
                               normalize_map(np.abs(m)))
    np.testing.assert_allclose(show_heatmap(m).images[0].get_array(), normalize_map(np.abs(m)))


def test_drawing_never_changes_the_callers_array():
    a = A.copy()
    a.flags.writeable = False  # read-only input (e.g. np.asarray of a PIL image) is fine, and left alone
    show_heatmap(a, smooth=1.0)
    show_diverging(torch.from_numpy(A.copy()))
    np.testing.assert_array_equal(a, A)


def test_normalize_unsigned_clips_at_percentile():
    m = np.arange(101, dtype=float).reshape(1, 101)  # 0..100: the 90th percentile is 90
    out = normalize_map(m, 90)
    np.testing.assert_allclose(out[0, :91], np.arange(91) / 90)
    assert (out[0, 90:] == 1).all() and out.min() == 0
    # default is the 99th percentile: one extreme pixel does not wash out the rest
    spike = np.ones((40, 40))
    spike[0, 0] = 1e6
    spike[5, 5] = 0.0
    d = normalize_map(spike)
    assert d[0, 0] == 1 and d[5, 5] == 0 and d[1, 1] > 0.9


def test_normalize_signed_keeps_zero_and_sign():
    m = np.linspace(-100, 100, 201).reshape(1, 201)
    out = normalize_map(m, 50, signed=True)  # 50th percentile of |m| is 50
    np.testing.assert_allclose(out[0, 100], 0.0)
    np.testing.assert_allclose(out[0, 125], 0.5)
    np.testing.assert_allclose(out[0, 75], -0.5)
    assert out.max() == 1 and out.min() == -1


def test_constant_map_gives_zeros():
    assert not normalize_map(np.full((3, 3), 2.0)).any()
    assert not normalize_map(np.zeros((3, 3)), signed=True).any()


def test_heatmap_draws_the_normalized_map():
    _fig, ax = plt.subplots()
    assert show_heatmap(A, ax=ax, title="t") is ax
    drawn = ax.images[0].get_array()
    np.testing.assert_allclose(drawn, normalize_map(reduce_channels(A, "abs_sum")))
    assert ax.get_title() == "t"
    ax = show_heatmap(A, reduction="max_abs")
    np.testing.assert_allclose(ax.images[0].get_array(), normalize_map(reduce_channels(A, "max_abs")))


def test_diverging_draws_signed_map():
    ax = show_diverging(torch.tensor(A), colorbar=True)
    np.testing.assert_allclose(ax.images[0].get_array(), normalize_map(reduce_channels(A, "sum"), signed=True))
    assert ax.images[0].get_clim() == (-1, 1)


def _bar_labels(ax):
    """Tick labels and axis label of the colourbar drawn beside ``ax`` (None when there is none)."""
    bars = [other for other in ax.figure.axes if other is not ax and getattr(other, "_colorbar", None) is not None]
    if not bars:
        return None
    assert len(bars) == 1
    bar = bars[0]._colorbar
    return [t.get_text() for t in bar.ax.get_yticklabels()], bar.ax.get_ylabel()


def test_maps_state_their_scale_in_a_colourbar_by_default():
    fig, ax = plt.subplots()
    show_heatmap(A, ax=ax)
    assert _bar_labels(ax) == (["min", "≥p99"], "scaled to own p99")
    fig, ax = plt.subplots()
    show_diverging(A, ax=ax, percentile=95)
    assert _bar_labels(ax) == (["-p95", "0", "+p95"], "scale: own p95 of |map|")
    fig, ax = plt.subplots()
    show_overlay(np.zeros((2, 2, 3)), A, ax=ax, percentile=99.5)
    assert _bar_labels(ax) == (["min", "≥p99.5"], "scaled to own p99.5")
    # the bar uses the same colour map and range as the panel
    bar = next(o for o in fig.axes if o is not ax)._colorbar
    assert bar.cmap.name == "inferno" and (bar.vmin, bar.vmax) == (0.0, 1.0)


@pytest.mark.parametrize("draw", [show_heatmap, show_diverging,
                                  lambda a, **kw: show_overlay(np.zeros((2, 2, 3)), a, **kw)])
def test_colorbar_false_leaves_the_panel_alone(draw):
    fig, ax = plt.subplots()
    draw(A, ax=ax, colorbar=False)
    assert fig.axes == [ax] and _bar_labels(ax) is None


def test_colourbars_fit_an_image_grid():
    fig, axes = image_grid(2, 3)
    for ax in axes.flat:
        show_diverging(A, ax=ax)
    fig.canvas.draw()  # constrained layout places every bar without error
    assert len(fig.axes) == 12


def test_overlay_and_image_accept_hwc_and_chw():
    rng = np.random.default_rng(0)
    photo_hwc = rng.random((6, 5, 3))
    attr = rng.normal(size=(3, 6, 5))
    a1 = show_overlay(photo_hwc, attr)
    a2 = show_overlay(torch.tensor(photo_hwc).permute(2, 0, 1)[None], torch.tensor(attr)[None])
    np.testing.assert_allclose(a1.images[1].get_array(), a2.images[1].get_array())
    # opacity follows the normalized map
    np.testing.assert_allclose(a1.images[1].get_array()[..., 3], 0.8 * normalize_map(reduce_channels(attr)))
    as_uint8 = (photo_hwc * 255).astype(np.uint8)
    ax = show_image(as_uint8)
    np.testing.assert_allclose(ax.images[0].get_array(), as_uint8 / 255, atol=1e-12)
    noisy = show_image(photo_hwc * 3 - 1)  # out of [0, 1]: clipped for display
    assert noisy.images[0].get_array().min() == 0 and noisy.images[0].get_array().max() == 1


def test_smooth_blurs_the_reduced_map_before_scaling():
    """smooth= is scipy's gaussian_filter, edges 'nearest', cut at 3 sigma (as 0.3 did)."""
    from scipy.ndimage import gaussian_filter

    def blur(m, sigma):
        return gaussian_filter(m, sigma, mode="nearest", truncate=3.0)

    rng = np.random.default_rng(1)
    attr = rng.normal(size=(3, 20, 20))
    ax = show_heatmap(attr, smooth=2.0)
    expected = normalize_map(blur(reduce_channels(attr), 2.0))
    np.testing.assert_allclose(ax.images[0].get_array(), expected)
    assert not np.allclose(expected, normalize_map(reduce_channels(attr)))
    ax = show_diverging(attr, smooth=1.0)
    np.testing.assert_allclose(ax.images[0].get_array(),
                               normalize_map(blur(reduce_channels(attr, "sum"), 1.0), signed=True))
    np.testing.assert_allclose(show_heatmap(attr, smooth=0).images[0].get_array(),
                               normalize_map(reduce_channels(attr)))
    ax = show_overlay(np.zeros((20, 20, 3)), attr, smooth=1.5)
    np.testing.assert_allclose(ax.images[1].get_array()[..., 3], 0.8 * normalize_map(blur(reduce_channels(attr), 1.5)))


def test_image_grid_shapes_and_labels():
    fig, axes = image_grid(2, 3, row_labels=["a", "b"], col_labels=["x", "y", "z"], title="T")
    assert axes.shape == (2, 3) and fig.get_suptitle() == "T"
    assert axes[1, 0].get_ylabel() == "b" and axes[0, 2].get_title() == "z"
    _, axes = image_grid(1, 1)
    assert axes.shape == (1, 1)


@pytest.mark.parametrize(
    "call, exc, pattern",
    [
        (lambda: show_heatmap(A, reduction="mean"), ValueError, "reduction.*mean"),
        (lambda: show_diverging(A, reduction="nope"), ValueError, "reduction.*nope"),
        (lambda: show_overlay(np.zeros((2, 2, 3)), A, reduction=None), ValueError, "reduction.*None"),
        (lambda: show_heatmap(A, reduce="max_abs"), TypeError, "reduce"),  # the old keyword is gone
        (lambda: show_heatmap(np.zeros((2, 3, 4, 4))), ValueError, r"attribution.*\(2, 3, 4, 4\)"),
        (lambda: show_heatmap(np.zeros(5)), ValueError, r"attribution.*\(5,\)"),
        (lambda: show_heatmap([[1.0]]), TypeError, "attribution.*list"),
        (lambda: show_heatmap(np.array([[np.nan]])), ValueError, "attribution.*NaN"),
        (lambda: show_heatmap(np.ones((2, 2), dtype=bool)), ValueError, "attribution.*bool"),
        (lambda: normalize_map(A[0], signed="yes"), TypeError, "signed.*yes"),
        (lambda: normalize_map(A), ValueError, r"saliency.*\(3, 2, 2\)"),
        (lambda: normalize_map(A[0], 0), ValueError, "percentile.*0"),
        (lambda: normalize_map(A[0], 101), ValueError, "percentile.*101"),
        (lambda: show_heatmap(A, percentile=-5), ValueError, "percentile.*-5"),
        (lambda: show_overlay(np.zeros((4, 4, 3)), A), ValueError, "height and width"),
        (lambda: show_overlay(np.zeros((2, 2, 3)), A, alpha=2), ValueError, "alpha.*2"),
        (lambda: show_image(np.zeros((2, 2, 2))), ValueError, "image.*channels"),
        (lambda: image_grid(0, 2), ValueError, "nrows.*0"),
        (lambda: show_heatmap(A, smooth=-1), ValueError, "smooth.*-1"),
        (lambda: show_overlay(np.zeros((2, 2, 3)), A, smooth=float("nan")), ValueError, "smooth.*nan"),
        (lambda: image_grid(2, 2, col_labels=["a"]), ValueError, "col_labels"),
        (lambda: show_heatmap(A, colorbar="yes"), TypeError, "colorbar.*yes"),
        (lambda: show_overlay(np.zeros((2, 2, 3)), A, colorbar=1), TypeError, "colorbar.*1"),
    ],
)
def test_bad_arguments(call, exc, pattern):
    with pytest.raises(exc, match=pattern):
        call()
    assert plt.get_fignums() == []  # arguments are checked before a figure is made


def test_import_changes_no_rcparams():
    code = (
        "import matplotlib; before = dict(matplotlib.rcParams);"
        "import interp_helpers.plots;"
        "assert dict(matplotlib.rcParams) == before; print('ok')"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "ok"
    before = dict(matplotlib.rcParams)
    importlib.reload(plots)
    show_heatmap(A)
    assert dict(matplotlib.rcParams) == before


# --------------------------------------------------------------------------- one shared scale bar


def _bars(fig):
    return [a._colorbar for a in fig.axes if getattr(a, "_colorbar", None) is not None]


def _ticks(bar, axis="y"):
    ticks = bar.ax.get_yticks() if axis == "y" else bar.ax.get_xticks()
    labels = bar.ax.get_yticklabels() if axis == "y" else bar.ax.get_xticklabels()
    return list(ticks), [t.get_text() for t in labels]


def test_scale_bar_unsigned_group_gets_one_bar_with_the_panels_scale():
    fig, axes = image_grid(2, 3)
    for ax in axes[:, 1:].flat:
        show_heatmap(A, ax=ax, colorbar=False)
    bar = scale_bar(fig, axes[:, 1:])
    assert _bars(fig) == [bar] and len(fig.axes) == 7  # ONE bar for the four panels
    assert _ticks(bar) == ([0.0, 1.0], ["min", "≥p99"])
    assert bar.ax.get_ylabel() == "scaled to own p99"
    assert bar.cmap.name == "inferno" and (bar.vmin, bar.vmax) == (0.0, 1.0)
    # the bar's colours are those of the panels: the panel's image uses the same map and range
    image = axes[0, 1].images[0]
    assert image.get_cmap().name == bar.cmap.name and image.get_clim() == (bar.vmin, bar.vmax)
    fig.canvas.draw()  # constrained layout places it without error


def test_scale_bar_signed_percentile_label_cmap_and_colorbar_options():
    fig, axes = image_grid(1, 2)
    for ax in axes.flat:
        show_diverging(A, ax=ax, percentile=95, colorbar=False)
    bar = scale_bar(fig, list(axes.flat), signed=True, percentile=95, label="signed sum", location="bottom",
                    shrink=0.5)
    assert _ticks(bar, "x") == ([-1.0, 0.0, 1.0], ["-p95", "0", "+p95"])
    assert bar.ax.get_xlabel() == "signed sum" and bar.orientation == "horizontal"
    assert bar.cmap.name == "RdBu_r" and (bar.vmin, bar.vmax) == (-1.0, 1.0)
    assert axes[0, 0].images[0].get_clim() == (bar.vmin, bar.vmax)
    fig, ax = plt.subplots()
    bar = scale_bar(fig, ax, cmap="viridis", percentile=99.5)
    assert bar.cmap.name == "viridis" and _ticks(bar)[1] == ["min", "≥p99.5"]
    bar = scale_bar(fig, ax, cmap=matplotlib.colormaps["magma"], signed=True)
    assert bar.cmap.name == "magma" and bar.ax.get_ylabel() == "scale: own p99 of |map|"


def test_per_panel_bars_are_scale_bar_for_one_axes():
    """colorbar=True draws exactly what scale_bar(fig, ax, ...) draws: one code path."""
    fig, (a1, a2) = plt.subplots(1, 2)
    show_diverging(A, ax=a1, percentile=97)
    a2.imshow(np.zeros((2, 2)))
    direct = scale_bar(fig, a2, signed=True, percentile=97)
    drawn = next(b for b in _bars(fig) if b is not direct)
    assert _ticks(drawn) == _ticks(direct) and drawn.ax.get_ylabel() == direct.ax.get_ylabel()
    assert drawn.cmap.name == direct.cmap.name and (drawn.vmin, drawn.vmax) == (direct.vmin, direct.vmax)


@pytest.mark.parametrize(
    "call, exc, pattern",
    [
        (lambda fig, ax: scale_bar(ax, ax), TypeError, "fig must be a matplotlib Figure"),
        (lambda fig, ax: scale_bar(fig, []), TypeError, "axes must be a matplotlib Axes"),
        (lambda fig, ax: scale_bar(fig, [ax, "x"]), TypeError, "axes must be"),
        (lambda fig, ax: scale_bar(fig, plt.subplots()[1]), ValueError, "axes must all belong to fig"),
        (lambda fig, ax: scale_bar(fig, ax, signed=1), TypeError, "signed.*1"),
        (lambda fig, ax: scale_bar(fig, ax, percentile=0), ValueError, "percentile.*0"),
        (lambda fig, ax: scale_bar(fig, ax, percentile=101), ValueError, "percentile.*101"),
        (lambda fig, ax: scale_bar(fig, ax, cmap="no_such_map"), ValueError, "cmap.*no_such_map"),
        (lambda fig, ax: scale_bar(fig, ax, cmap=3), TypeError, "cmap.*int"),
        (lambda fig, ax: scale_bar(fig, ax, label=5), TypeError, "label.*int"),
    ],
)
def test_scale_bar_bad_arguments(call, exc, pattern):
    fig, ax = plt.subplots()
    with pytest.raises(exc, match=pattern):
        call(fig, ax)
    assert _bars(fig) == []


def test_a_panel_title_keeps_the_column_label_above_it():
    import matplotlib.pyplot as plt

    fig, axes = image_grid(2, 2, col_labels=["photo", "map"])
    show_heatmap(np.ones((3, 4, 4)), ax=axes[0, 1], title="channel 0", colorbar=False)
    show_heatmap(np.ones((3, 4, 4)), ax=axes[1, 1], title="channel 1", colorbar=False)
    assert axes[0, 1].get_title() == "map\nchannel 0"  # row 0 carries the column label
    assert axes[1, 1].get_title() == "channel 1"
    assert axes[0, 0].get_title() == "photo"
    plt.close(fig)


# --------------------------------------------------------------------------- evaluation results


def _curve(kind, scores, auc):
    from interp_helpers.evaluation import CurveResult

    scores = np.asarray(scores, dtype=float)
    return CurveResult(kind, "zero", "abs_sum", np.linspace(0, 1, scores.shape[1]), scores, np.asarray(auc),
                       np.zeros(len(scores), dtype=np.int64))


def _randomization(steps, spearman, n=2, size=6):
    from interp_helpers.evaluation import RandomizationResult

    spearman = np.asarray(spearman, dtype=float)
    maps = np.random.default_rng(0).random((len(steps), n, size, size)).astype(np.float32)
    return RandomizationResult(tuple(steps), spearman, spearman * 0.5, maps, np.zeros(n, dtype=np.int64))


def test_plot_curves_draws_the_mean_and_names_the_auc():
    curves = {"a": _curve("deletion", [[1.0, 0.5, 0.0], [0.8, 0.2, 0.0]], [0.5, 0.3]),
              "b": _curve("deletion", [[1.0, 0.9, 0.8], [1.0, 1.0, 1.0]], [0.9, 1.0])}
    ax = plot_curves(curves, title="t")
    assert len(ax.lines) == 2 and len(ax.collections) == 2  # the spread of each
    np.testing.assert_allclose(ax.lines[0].get_ydata(), [0.9, 0.35, 0.0])
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["a (AUC 0.400)", "b (AUC 0.950)"]
    assert ax.get_legend().get_title().get_text() == "lower AUC is better"
    assert "deleted" in ax.get_xlabel() and ax.get_title() == "t"
    assert len(plot_curves(curves, spread=False).collections) == 0
    with pytest.raises(ValueError, match="kind"):
        plot_curves({"d": curves["a"], "i": _curve("insertion", [[0.0, 1.0]], [0.5])})
    with pytest.raises(TypeError, match="curves"):
        plot_curves({"a": "not a result"})
    with pytest.raises(TypeError, match="spread"):
        plot_curves(curves, spread="no")


def test_plot_randomization_draws_mean_over_images_without_nan():
    steps = ("original", "fc", "conv")
    results = {"grad": _randomization(steps, [[1, 1], [0.5, np.nan], [0.0, 0.2]]),
               "flat": _randomization(steps, np.full((3, 2), np.nan))}
    ax = plot_randomization(results)
    np.testing.assert_allclose(ax.lines[0].get_ydata(), [1.0, 0.5, 0.1])  # NaN left out of the mean
    assert [t.get_text() for t in ax.get_xticklabels()] == ["original", "+ fc", "+ conv"]
    ax = plot_randomization(results, metric="ssim")
    assert "SSIM" in ax.get_ylabel()
    with pytest.raises(ValueError, match="metric"):
        plot_randomization(results, metric="pearson")
    with pytest.raises(ValueError, match="steps"):
        plot_randomization({"a": results["grad"], "b": _randomization(("original", "x"), [[1, 1], [0, 0]])})


def test_plot_cascade_maps_rows_columns_and_the_maps_drawn():
    steps = ("original", "fc", "conv")
    results = {"grad": _randomization(steps, np.ones((3, 2))), "input": _randomization(steps, np.ones((3, 2)))}
    fig, axes = plot_cascade_maps(results, image=1, photo=np.zeros((6, 6, 3)))
    assert axes.shape == (2, 4) and axes[0, 2].get_title() == "+ fc"
    np.testing.assert_allclose(axes[1, 3].images[0].get_array(), normalize_map(results["input"].maps[2, 1]))
    fig, axes = plot_cascade_maps(results, steps=["original", "conv"])
    assert axes.shape == (2, 2) and _bars(fig) == []  # one scale_bar is the caller's to add
    bad_arguments = [({"image": 2}, "image"), ({"image": True}, "image"), ({"steps": ["original", "nope"]}, "steps"),
                     ({"steps": "fc"}, "steps")]
    for bad, match in bad_arguments:
        with pytest.raises(ValueError, match=match):
            plot_cascade_maps(results, **bad)


def _small_text(fig, minimum=9):
    """The texts of a drawn figure smaller than ``minimum`` points (9 pt is 12.5 px at 100 dpi)."""
    fig.canvas.draw()
    return [(t.get_text(), t.get_fontsize()) for t in fig.findobj(matplotlib.text.Text)
            if t.get_text() and t.get_visible() and t.get_fontsize() < minimum]


def test_figure_text_is_legible():
    fig, axes = image_grid(2, 3, row_labels=["a", "b"], col_labels=["x", "y", "z"], title="T")
    for ax in axes.flat:
        show_heatmap(A, ax=ax, colorbar=False, title="panel")
    scale_bar(fig, axes[:, 1:])
    scale_bar(fig, axes[:, 0], signed=True, location="bottom")
    assert _small_text(fig) == []
    steps = ("original", "fc")
    results = {"m": _randomization(steps, np.ones((2, 2)))}
    fig, axes = plot_cascade_maps(results, title="cascade")
    scale_bar(fig, axes)
    assert _small_text(fig) == []
    for draw in (lambda ax: plot_curves({"a": _curve("insertion", [[0.0, 1.0]], [0.5])}, ax=ax, title="t"),
                 lambda ax: plot_randomization(results, ax=ax, title="t"), lambda ax: show_diverging(A, ax=ax)):
        fig, ax = plt.subplots()
        draw(ax)
        assert _small_text(fig) == []
