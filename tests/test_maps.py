"""interp_helpers.maps: known answers, cross-checks with scipy, bad inputs."""
import warnings

import numpy as np
import pytest
import torch
from scipy.stats import spearmanr

from interp_helpers.maps import REDUCTIONS, pool_map, reduce_channels, resize_map, spearman

A = np.array([[[1.0, -2.0]], [[-3.0, 0.5]]])  # (C=2, H=1, W=2)


def test_reduce_channels_known_values_tensor_and_array():
    a = torch.from_numpy(A)
    assert torch.equal(reduce_channels(a), torch.tensor([[4.0, 2.5]], dtype=torch.float64))  # default abs_sum
    assert torch.equal(reduce_channels(a, "sum"), torch.tensor([[-2.0, -1.5]], dtype=torch.float64))
    assert torch.equal(reduce_channels(a, "max_abs"), torch.tensor([[3.0, 2.0]], dtype=torch.float64))
    out = reduce_channels(A[None], "sum")  # a batch of one; an array in, an array out
    assert isinstance(out, np.ndarray) and out.shape == (1, 1, 2)
    assert REDUCTIONS == ("abs_sum", "sum", "max_abs")


@pytest.mark.parametrize(("value", "reduction", "error", "match"), [
    (torch.zeros(3, 4, 4), "max", ValueError, "reduction.*max"),
    (torch.zeros(3, 4, 4), None, ValueError, "reduction"),
    (torch.zeros(4, 4), "abs_sum", ValueError, "attribution"),
    ([[[1.0]]], "abs_sum", TypeError, "attribution.*list"),
    (torch.zeros(1, 2, 2, dtype=torch.bool), "sum", ValueError, "attribution.*bool"),
])
def test_reduce_channels_bad_inputs(value, reduction, error, match):
    with pytest.raises(error, match=match):
        reduce_channels(value, reduction)


def test_pool_and_resize_known_values():
    blocks = np.kron(np.array([[1.0, 2.0], [3.0, 4.0]]), np.ones((3, 3)))
    np.testing.assert_array_equal(pool_map(blocks, 2), [[1, 2], [3, 4]])
    np.testing.assert_allclose(pool_map(blocks, (1, 1)), [[2.5]])
    assert isinstance(pool_map(torch.from_numpy(blocks), (2, 3)), torch.Tensor)
    up = resize_map(torch.ones(2, 2), (5, 7))
    assert up.shape == (5, 7) and up.dtype == torch.float64 and torch.allclose(up, torch.ones(5, 7, dtype=up.dtype))
    assert resize_map(np.zeros((3, 2, 2)), 4).shape == (3, 4, 4)
    # align_corners=False: the centre of each coarse cell keeps its value; the corners too
    up = resize_map(np.array([[0.0, 1.0]]), (1, 4))
    np.testing.assert_allclose(up, [[0.0, 0.25, 0.75, 1.0]])


@pytest.mark.parametrize(("call", "error", "match"), [
    (lambda: pool_map(np.eye(4), 5), ValueError, "exceed"),
    (lambda: pool_map(np.eye(4), 0), ValueError, "size"),
    (lambda: pool_map(np.eye(4), (2, 2, 2)), ValueError, "size"),
    (lambda: pool_map(np.eye(4), True), ValueError, "size"),
    (lambda: pool_map(np.eye(4)[0], 2), ValueError, "saliency"),
    (lambda: resize_map(np.full((2, 2), np.nan), 4), ValueError, "saliency"),
    (lambda: resize_map([[1.0]], 4), TypeError, "saliency"),
])
def test_resampling_bad_inputs(call, error, match):
    with pytest.raises(error, match=match):
        call()


def test_spearman_matches_scipy_with_ties_and_monotone_maps():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 5, size=(8, 9)).astype(float)  # many ties: average ranks
    b = a + rng.normal(size=a.shape)
    assert spearman(a, b) == pytest.approx(spearmanr(a.ravel(), b.ravel()).statistic, abs=1e-12)
    assert spearman(a, np.exp(a)) == pytest.approx(1.0)
    assert spearman(torch.from_numpy(a), -a) == pytest.approx(-1.0)


def test_spearman_constant_map_is_nan_without_a_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # scipy warns on constant input; spearman answers NaN before asking it
        assert np.isnan(spearman(np.ones((4, 4)), np.arange(16.0).reshape(4, 4)))
    with pytest.raises(ValueError, match="same number"):
        spearman(np.zeros(3), np.zeros(4))
    with pytest.raises(ValueError, match="NaN"):
        spearman(np.array([1.0, np.nan]), np.zeros(2))
