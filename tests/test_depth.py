"""interp_helpers.depth: known answers for layer maps, resolution, overlap, agreement and channels; bad input."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from interp_helpers.depth import (
    agreement_table,
    channel_importance,
    effective_resolution,
    layer_map,
    top_channel_share,
    top_fraction_overlap,
)


def _blocks(k: int, size: int = 224, seed: int = 0) -> np.ndarray:
    """A size x size map of k x k independent constant blocks."""
    rng = np.random.default_rng(seed)
    cells = rng.standard_normal((k, k))
    return np.kron(cells, np.ones((size // k, size // k)))


# --------------------------------------------------------------------------- layer_map


def test_layer_map_sums_channels_and_upsamples() -> None:
    a = torch.zeros(2, 3, 2, 2, dtype=torch.float64)
    a[0, 0, 0, 0], a[0, 1, 0, 0], a[0, 2, 1, 1] = 1.0, -3.0, 2.0
    native = layer_map(a)
    assert native.shape == (2, 2, 2)
    torch.testing.assert_close(native[0], torch.tensor([[-2.0, 0.0], [0.0, 2.0]], dtype=torch.float64))
    torch.testing.assert_close(layer_map(a, reduction="abs_sum")[0, 0, 0], torch.tensor(4.0, dtype=torch.float64))
    up = layer_map(a, 8)
    assert up.shape == (2, 8, 8)
    # Each cell's centre patch keeps its value (align_corners=False); the total is scaled by the area.
    assert float(up[0, 0, 0]) == pytest.approx(-2.0)
    assert float(up[0, 7, 7]) == pytest.approx(2.0)
    assert float(up[0].sum()) == pytest.approx(16 * float(native[0].sum()))
    assert layer_map(a[0], (4, 6)).shape == (1, 4, 6)
    assert layer_map(a, reduction="max_abs")[0, 0, 0] == pytest.approx(3.0)  # any of maps.REDUCTIONS
    # the default is the signed sum (the documented exception to maps.DEFAULT_REDUCTION)
    torch.testing.assert_close(layer_map(a), layer_map(a, reduction="sum"))


@pytest.mark.parametrize(
    ("attribution", "kwargs", "error", "match"),
    [
        (np.zeros((1, 2, 3, 3)), {}, TypeError, "attribution"),
        (torch.zeros(3, 3), {}, ValueError, "attribution"),
        (torch.zeros(1, 2, 3, 3), {"reduction": "max"}, ValueError, "reduction"),
        (torch.zeros(1, 2, 3, 3), {"size": 0}, ValueError, "size"),
        (torch.zeros(1, 2, 3, 3), {"size": (4, 4, 4)}, ValueError, "size"),
        (torch.full((1, 2, 3, 3), float("nan")), {}, ValueError, "attribution"),
        (torch.zeros(1, 2, 3, 3, dtype=torch.bool), {}, ValueError, "attribution"),
    ],
)
def test_layer_map_bad_arguments(attribution: object, kwargs: dict, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        layer_map(attribution, **kwargs)


# --------------------------------------------------------------------------- effective_resolution


@pytest.mark.parametrize("k", [4, 7, 14, 28])
def test_block_maps_have_resolution_k(k: int) -> None:
    values = [effective_resolution(_blocks(k, seed=s)) for s in range(4)]
    assert np.mean(values) == pytest.approx(k, rel=0.15)


def test_white_noise_is_near_full_resolution_and_smoothing_lowers_it() -> None:
    noise = np.random.default_rng(0).standard_normal((64, 64))
    assert effective_resolution(noise) > 0.8 * 64
    smooth = layer_map(torch.from_numpy(_blocks(7, 56)).view(1, 1, 56, 56), 224)[0]
    # bilinear upsampling of a 7 x 7 grid: no more than 7 cells across, and well above 1
    assert 3 < effective_resolution(smooth) <= 7.5


def test_resolution_is_scale_free() -> None:
    m = _blocks(8, 64)
    assert effective_resolution(3.0 * m + 5.0) == pytest.approx(effective_resolution(m))
    assert effective_resolution(torch.from_numpy(m)) == pytest.approx(effective_resolution(m))


# --------------------------------------------------------------------------- top_fraction_overlap


def test_top_fraction_overlap_known_answers() -> None:
    a = np.arange(100, dtype=float).reshape(10, 10)
    assert top_fraction_overlap(a, a, 0.1) == 1.0
    assert top_fraction_overlap(a, -a, 0.1) == 0.0
    b = a.copy()
    b.ravel()[95:] = -1  # 5 of a's top-10 pixels drop out of b's top 10
    assert top_fraction_overlap(a, b, 0.1) == pytest.approx(0.5)
    assert top_fraction_overlap(a, b, 1.0) == 1.0
    # unrelated maps: about `fraction` on average
    rng = np.random.default_rng(2)
    chance = np.mean([top_fraction_overlap(rng.random((50, 50)), rng.random((50, 50)), 0.2) for _ in range(20)])
    assert chance == pytest.approx(0.2, abs=0.03)


def test_agreement_table() -> None:
    rng = np.random.default_rng(3)
    a = rng.standard_normal((8, 8))
    table = agreement_table({"x": a, "y": -a, "z": torch.from_numpy(a)}, fraction=0.25)
    assert list(table.columns) == ["a", "b", "spearman", "top_overlap"]
    assert list(zip(table.a, table.b)) == [("x", "y"), ("x", "z"), ("y", "z")]
    np.testing.assert_allclose(table.spearman, [-1.0, 1.0, -1.0])
    np.testing.assert_allclose(table.top_overlap, [0.0, 1.0, 0.0])
    # a constant map gets NaN for Spearman (maps.spearman's policy) and still an overlap
    flat = agreement_table({"x": a, "flat": np.ones((8, 8))}, fraction=0.25)
    assert np.isnan(flat.spearman[0]) and 0.0 <= flat.top_overlap[0] <= 1.0


def test_agreement_on_a_coarse_grid_recovers_shared_structure() -> None:
    rng = np.random.default_rng(4)
    m = np.kron(rng.standard_normal((7, 7)), np.ones((32, 32)))
    # Pixel noise hides shared coarse structure; pooling to the coarse grid recovers it.
    noisy = m + 10 * rng.standard_normal(m.shape)
    fine = agreement_table({"m": m, "noisy": noisy})
    coarse = agreement_table({"m": m, "noisy": noisy}, grid=7)
    assert float(fine.spearman[0]) < 0.2 and float(coarse.spearman[0]) > 0.9


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: effective_resolution(np.zeros((8, 8))), ValueError, "constant"),
        (lambda: effective_resolution(np.zeros(8)), ValueError, "saliency"),
        (lambda: effective_resolution([[1.0, 2.0], [3.0, 4.0]]), TypeError, "saliency"),
        (lambda: effective_resolution(np.full((4, 4), np.nan)), ValueError, "saliency"),
        (lambda: top_fraction_overlap(np.eye(4), np.eye(4), 0), ValueError, "fraction"),
        (lambda: top_fraction_overlap(np.eye(4), np.eye(4), 1.5), ValueError, "fraction"),
        (lambda: top_fraction_overlap(np.eye(4), np.eye(3)), ValueError, "same shape"),
        (lambda: agreement_table({"x": np.eye(4)}), ValueError, "maps"),
        (lambda: agreement_table({"x": np.eye(4), "y": np.eye(3)}), ValueError, "maps"),
        (lambda: agreement_table({"x": np.eye(4), "y": np.eye(4)}, fraction=2), ValueError, "fraction"),
        (lambda: agreement_table({"x": np.eye(4), "y": np.eye(4)}, grid=0), ValueError, "grid"),
        (lambda: agreement_table([np.eye(4), np.eye(4)]), ValueError, "maps"),
        (lambda: agreement_table({"x": np.eye(4), "y": np.eye(4)}, grid=5), ValueError, "exceed"),
        (lambda: effective_resolution(np.ones((4, 4), dtype=bool)), ValueError, "saliency"),
    ],
)
def test_bad_arguments(call: object, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        call()


# --------------------------------------------------------------------------- channels


def test_channel_importance_and_top_channel_share_known_answers() -> None:
    a = torch.zeros(2, 4, 3, 3, dtype=torch.float64)
    a[0, 2] = -1.0  # image 0: channel 2 carries 9 of 12
    a[0, 0, 0, 0], a[0, 1, 1, 1], a[0, 3, 2, 2] = 1.0, 1.0, -1.0
    a[1] = 0.5  # image 1: every channel carries the same
    importance = channel_importance(a)
    assert importance.shape == (2, 4)
    torch.testing.assert_close(importance[0], torch.tensor([1.0, 1.0, 9.0, 1.0], dtype=torch.float64))
    share = top_channel_share(a)
    torch.testing.assert_close(share[0], torch.tensor([0.75, 10 / 12, 11 / 12, 1.0], dtype=torch.float64))
    torch.testing.assert_close(share[1], torch.tensor([0.25, 0.5, 0.75, 1.0], dtype=torch.float64))
    # a single image (C, h, w) is a batch of one; the sign of the attribution does not matter
    torch.testing.assert_close(top_channel_share(-a[0]), share[:1])


def test_top_channel_share_is_monotone_and_ends_at_one() -> None:
    a = torch.randn(3, 17, 5, 5, generator=torch.Generator().manual_seed(0))
    share = top_channel_share(a)
    assert bool((share.diff(dim=1) >= 0).all())
    torch.testing.assert_close(share[:, -1], torch.ones(3, dtype=torch.float64))
    # the top channel is the argmax of the importance
    top = channel_importance(a).argmax(dim=1)
    for n in range(3):
        assert float(share[n, 0]) == pytest.approx(float(a[n, top[n]].abs().sum() / a[n].abs().sum()))


@pytest.mark.parametrize(
    ("call", "error", "match"),
    [
        (lambda: channel_importance(np.zeros((1, 2, 3, 3))), TypeError, "attribution"),
        (lambda: channel_importance(torch.zeros(3, 3)), ValueError, "attribution"),
        (lambda: channel_importance(torch.zeros(1, 2, 3, 3, dtype=torch.long)), ValueError, "floating"),
        (lambda: channel_importance(torch.full((1, 2, 3, 3), float("nan"))), ValueError, "NaN"),
        (lambda: top_channel_share(torch.zeros(1, 2, 3, 3)), ValueError, "zero"),
    ],
)
def test_channel_functions_bad_arguments(call: object, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        call()
