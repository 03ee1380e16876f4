"""Tests for interp_helpers.attribution.backgrounds: crops, blur known answers, seeding, bad input."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image

from interp_helpers.attribution.backgrounds import blurred_copies, make_background, random_crops


def _gradient_photo(w: int = 60, h: int = 40) -> Image.Image:
    """Red grows left to right, green top to bottom: a crop's colours say where it came from."""
    xs = np.linspace(0, 255, w)[None, :].repeat(h, 0)
    ys = np.linspace(0, 255, h)[:, None].repeat(w, 1)
    return Image.fromarray(np.stack([xs, ys, np.zeros_like(xs)], -1).astype(np.uint8))


# --------------------------------------------------------------------------- random_crops


def test_random_crops_sizes_seeding_and_prefix() -> None:
    photos = [_gradient_photo(), _gradient_photo(30, 50)]
    a = random_crops(photos, 6, seed=3, size=32)
    b = random_crops(photos, 6, seed=3, size=32)
    c = random_crops(photos, 3, seed=3, size=32)
    d = random_crops(photos, 6, seed=4, size=32)
    assert len(a) == 6 and all(im.size == (32, 32) and im.mode == "RGB" for im in a)
    arr = [np.asarray(im) for im in a]
    assert all(np.array_equal(x, np.asarray(y)) for x, y in zip(arr, b))
    assert all(np.array_equal(x, np.asarray(y)) for x, y in zip(arr[:3], c))  # crop k depends on (seed, k)
    assert not all(np.array_equal(x, np.asarray(y)) for x, y in zip(arr, d))


def test_full_scale_crop_without_flip_is_the_centred_square_resized() -> None:
    """min_scale=1: the crop side is the shorter side; on a 40-high photo the crop spans all rows."""
    photo = _gradient_photo(40, 40)
    (crop,) = random_crops([photo], 1, seed=0, min_scale=1.0, flip=False, size=40)
    np.testing.assert_array_equal(np.asarray(crop), np.asarray(photo))


def test_flips_mirror_the_crop() -> None:
    photo = _gradient_photo(40, 40)
    crops = random_crops([photo], 40, seed=1, min_scale=1.0, flip=True, size=40)
    original, mirrored = np.asarray(photo), np.asarray(photo)[:, ::-1]
    kinds = [np.array_equal(np.asarray(c), original) - np.array_equal(np.asarray(c), mirrored) for c in crops]
    assert set(kinds) == {1, -1}  # every crop is the photo or its mirror, both occur
    assert 10 <= kinds.count(-1) <= 30


def test_crops_come_from_inside_the_photo() -> None:
    photo = _gradient_photo(100, 50)
    for crop in random_crops([photo], 10, seed=2, min_scale=0.2, flip=False, size=20):
        a = np.asarray(crop).astype(int)
        assert a[..., 2].max() == 0
        # red increases left to right within the crop, green top to bottom (no flip)
        assert a[:, -1, 0].mean() >= a[:, 0, 0].mean() and a[-1, :, 1].mean() >= a[0, :, 1].mean()


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"images": []}, "images"),
        ({"images": "chelsea"}, "images"),
        ({"n": 0}, "n"),
        ({"min_scale": 0}, "min_scale"),
        ({"min_scale": 1.5}, "min_scale"),
        ({"size": 0}, "size"),
        ({"seed": -2}, "seed"),
        ({"min_scale": float("nan")}, "min_scale"),
        ({"min_scale": True}, "min_scale"),
    ],
)
def test_random_crops_bad_arguments(kwargs: dict, match: str) -> None:
    args = {"images": [_gradient_photo()], "n": 2, "seed": 0}
    args.update(kwargs)
    with pytest.raises(ValueError, match=match):
        random_crops(args.pop("images"), args.pop("n"), **args)
    with pytest.raises(TypeError, match="flip"):
        random_crops([_gradient_photo()], 2, flip="yes")


def test_seed_defaults_to_zero() -> None:
    photos = [_gradient_photo(), _gradient_photo(30, 50)]
    default = random_crops(photos, 4, size=16)
    seeded = random_crops(photos, 4, seed=0, size=16)
    assert all(np.array_equal(np.asarray(a), np.asarray(b)) for a, b in zip(default, seeded))

    class Identity:
        def preprocess(self, images: list) -> list:
            return images

    crops = make_background(Identity(), 2, images=photos)
    assert all(np.array_equal(np.asarray(a), np.asarray(b))
               for a, b in zip(crops, random_crops(photos, 2, seed=0)))


def test_make_background_uses_model_preprocess() -> None:
    class FakeModel:
        def __init__(self) -> None:
            self.seen: list[int] = []

        def preprocess(self, images: list) -> torch.Tensor:
            self.seen.append(len(images))
            return torch.stack([torch.from_numpy(np.asarray(i, dtype=np.float32)).permute(2, 0, 1) for i in images])

    fake = FakeModel()
    bg = make_background(fake, 3, images=[_gradient_photo()], seed=0)
    assert fake.seen == [3] and bg.shape == (3, 3, 224, 224)
    with pytest.raises(TypeError, match="model"):
        make_background(torch.nn.Linear(2, 2), 3)


def test_make_background_default_uses_bundled_photos() -> None:
    class Identity:
        def preprocess(self, images: list) -> list:
            return images

    crops = make_background(Identity(), 2, seed=0)
    assert len(crops) == 2 and all(c.size == (224, 224) for c in crops)


# --------------------------------------------------------------------------- blurred_copies


def test_blur_known_answers() -> None:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 20, 24, generator=g, dtype=torch.float64)
    out = blurred_copies(x, [0, 1.0, 50.0])
    assert out.shape == (6, 3, 20, 24)
    torch.testing.assert_close(out[0], x[0])  # sigma 0: unchanged
    torch.testing.assert_close(out[3], x[1])  # image-major order
    # A constant image stays constant; the kernel sums to 1 (so blur commutes with normalisation).
    const = torch.full((1, 3, 8, 8), 0.7, dtype=torch.float64)
    torch.testing.assert_close(blurred_copies(const, [2.0]), const)
    # Blur is linear and commutes with a per-channel affine map.
    mean, std = torch.tensor([0.4, 0.5, 0.6]).view(1, 3, 1, 1).double(), torch.tensor([0.2, 0.3, 0.25]).view(1, 3, 1, 1).double()
    torch.testing.assert_close(blurred_copies((x - mean) / std, [1.5]), (blurred_copies(x, [1.5]) - mean) / std)
    # Blur lowers variance; a huge sigma (kernel wider than the image) leaves ~ the image mean.
    assert out[1].var() < 0.5 * x[0].var()
    assert out[2].std(dim=(1, 2)).max() < 0.25 * x[0].std()


def test_blur_of_an_impulse_is_a_gaussian() -> None:
    x = torch.zeros(1, 1, 31, 31, dtype=torch.float64)
    x[0, 0, 15, 15] = 1.0
    y = blurred_copies(x, [2.0])[0, 0]
    r = torch.arange(31, dtype=torch.float64) - 15
    gauss = torch.exp(-0.5 * (r / 2.0) ** 2) * (r.abs() <= 6)  # radius int(3 sigma + 0.5) = 6, as documented
    expected = torch.outer(gauss, gauss)
    expected = expected / expected.sum()
    torch.testing.assert_close(y, expected, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("sigmas", [[0.4, 0.7, 1.0], [1.5, 2.0, 3.3], [0.1, 12.0]])
def test_blur_equals_scipy_gaussian_filter_nearest(sigmas: list) -> None:
    """blurred_copies = scipy.ndimage.gaussian_filter(mode="nearest", truncate=3) on each image and sigma.

    The kernel radius is scipy's int(3 sigma + 0.5) (it was ceil(3 sigma) before interp_helpers.maps):
    sigmas 0.4 and 0.7 are where the two conventions differ.
    """
    from scipy.ndimage import gaussian_filter

    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3, 17, 23, generator=g, dtype=torch.float64)
    out = blurred_copies(x, sigmas)
    for i in range(2):
        for k, sigma in enumerate(sigmas):
            expected = gaussian_filter(x[i].numpy(), (0, sigma, sigma), mode="nearest", truncate=3.0)
            np.testing.assert_allclose(out[i * len(sigmas) + k].numpy(), expected, rtol=1e-10, atol=1e-12)


def test_blur_keeps_dtype_and_float32_is_close_to_scipy() -> None:
    from scipy.ndimage import gaussian_filter

    x = torch.rand(1, 3, 10, 10)
    out = blurred_copies(x, [0.7])
    assert out.dtype == torch.float32 and out.shape == (1, 3, 10, 10)
    expected = gaussian_filter(x[0].double().numpy(), (0, 0.7, 0.7), mode="nearest", truncate=3.0)
    np.testing.assert_allclose(out[0].numpy(), expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    ("inputs", "sigmas", "error", "match"),
    [
        (torch.zeros(3, 8, 8), [1.0], ValueError, "inputs"),
        ([[0.0]], [1.0], TypeError, "inputs"),
        (torch.zeros(1, 3, 8, 8), [], ValueError, "sigmas"),
        (torch.zeros(1, 3, 8, 8), [-1.0], ValueError, "sigmas"),
        (torch.zeros(1, 3, 8, 8), [float("nan")], ValueError, "sigmas"),
        (torch.zeros(1, 3, 8, 8), 2.0, ValueError, "sigmas"),
    ],
)
def test_blur_bad_arguments(inputs: object, sigmas: object, error: type, match: str) -> None:
    with pytest.raises(error, match=match):
        blurred_copies(inputs, sigmas)
