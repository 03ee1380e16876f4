"""The map primitives (interp_helpers.maps): known answers and cross-checks against scipy."""
import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter
from scipy.stats import spearmanr

from interp_helpers.maps import gaussian_blur, pool_map, reduce_channels, resize_map, spearman


def test_reduce_channels_known_values_tensor_and_array():
    a = torch.tensor([[[1.0, -2.0]], [[-3.0, 0.5]]])  # (C=2, H=1, W=2)
    assert torch.equal(reduce_channels(a), torch.tensor([[4.0, 2.5]]))  # default abs_sum
    assert torch.equal(reduce_channels(a, "sum"), torch.tensor([[-2.0, -1.5]]))
    assert torch.equal(reduce_channels(a, "max_abs"), torch.tensor([[3.0, 2.0]]))
    out = reduce_channels(a.numpy()[None], "sum")  # batch of one, array in -> array out
    assert isinstance(out, np.ndarray) and out.shape == (1, 1, 2)


@pytest.mark.parametrize("bad, match", [("max", "reduction"), (None, "reduction")])
def test_reduce_channels_rejects_unknown_reduction(bad, match):
    with pytest.raises(ValueError, match=match):
        reduce_channels(torch.zeros(3, 4, 4), bad)


def test_reduce_channels_rejects_2d():
    with pytest.raises(ValueError, match="attribution"):
        reduce_channels(torch.zeros(4, 4))


@pytest.mark.parametrize("sigma", [0.7, 2.0, 5.0])
def test_gaussian_blur_equals_scipy_nearest(sigma):
    x = torch.randn(2, 3, 20, 17, generator=torch.Generator().manual_seed(0), dtype=torch.float64)
    ours = gaussian_blur(x, sigma).numpy()
    ref = gaussian_filter(x.numpy(), (0, 0, sigma, sigma), mode="nearest", truncate=3.0)
    np.testing.assert_allclose(ours, ref, atol=1e-12)


def test_gaussian_blur_zero_sigma_copies_and_bad_sigma_named():
    x = torch.randn(1, 1, 5, 5)
    y = gaussian_blur(x, 0)
    assert torch.equal(x, y) and y.data_ptr() != x.data_ptr()
    with pytest.raises(ValueError, match="sigma"):
        gaussian_blur(x, -1.0)


def test_pool_and_resize_known_values():
    blocks = np.kron(np.array([[1.0, 2.0], [3.0, 4.0]]), np.ones((3, 3)))
    np.testing.assert_array_equal(pool_map(blocks, 2), [[1, 2], [3, 4]])
    up = resize_map(torch.tensor([[1.0, 1.0], [1.0, 1.0]]), (5, 7))
    assert up.shape == (5, 7) and torch.allclose(up, torch.ones(5, 7, dtype=torch.float64))
    batch = resize_map(np.zeros((3, 2, 2)), 4)
    assert batch.shape == (3, 4, 4)
    with pytest.raises(ValueError, match="size"):
        pool_map(blocks, 7)


def test_spearman_matches_scipy_with_ties():
    rng = np.random.default_rng(0)
    a = rng.integers(0, 5, size=(8, 9)).astype(float)  # many ties
    b = a + rng.normal(size=a.shape)
    assert spearman(a, b) == pytest.approx(spearmanr(a.ravel(), b.ravel()).statistic, abs=1e-12)
    assert spearman(a, -a) == pytest.approx(-1.0)


def test_spearman_constant_map_is_nan():
    assert np.isnan(spearman(np.ones((4, 4)), np.arange(16.0).reshape(4, 4)))
    with pytest.raises(ValueError, match="same number"):
        spearman(np.zeros(3), np.zeros(4))
