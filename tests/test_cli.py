"""python -m interp_helpers explain: a figure for one's own photo, one-line errors, no tracebacks."""
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from interp_helpers import cli
from interp_helpers.cli import main
from interp_helpers.images import example_images


def _figure(path) -> np.ndarray:
    return np.asarray(Image.open(path))


def test_the_module_entry_point_writes_a_figure(tmp_path):
    photo = tmp_path / "my photo.jpg"
    Image.open(example_images()[2].path()).save(photo)  # chelsea, from a path with a space
    out = tmp_path / "figs" / "cat.png"
    result = subprocess.run([sys.executable, "-m", "interp_helpers", "explain", str(photo), "--method", "gradient",
                             "--top-k", "2", "--out", str(out)], check=False, capture_output=True, text=True,
                            timeout=300, env={"TQDM_DISABLE": "1", "PATH": "/usr/bin:/bin", "OMP_NUM_THREADS": "1"})
    assert result.returncode == 0, result.stderr
    assert f"wrote {out}" in result.stdout
    figure = _figure(out)
    assert figure.shape[1] > 2.5 * figure.shape[0] > 600  # photo + two maps side by side


@pytest.mark.parametrize("method,expected", [
    ("smoothgrad", {"n_samples": 2, "seed": 5, "noise_level": 0.15}),
    ("expected_gradients", {"n_samples": 2, "seed": 5}),
])
def test_sampling_methods_get_their_settings_and_a_target_by_label(tmp_path, monkeypatch, method, expected):
    """The method is called as method(model, inputs, target, **keywords), once per class, with the CLI's settings."""
    calls = []
    real = getattr(cli, method)

    def spy(model, inputs, target, **keywords):
        calls.append((tuple(inputs.shape), target, keywords))
        return real(model, inputs, target, **keywords)

    monkeypatch.setattr(cli, method, spy)
    out = tmp_path / "coffee.png"
    assert main(["explain", "coffee", "--method", method, "--target", "espresso", "--n-samples", "2", "--seed", "5",
                 "--out", str(out)]) == 0
    assert out.stat().st_size > 10_000
    ((shape, target, keywords),) = calls
    assert shape == (1, 3, 224, 224) and target == 967  # ImageNet's "espresso"
    background = keywords.pop("background", None)
    assert keywords == expected
    if method == "expected_gradients":  # random crops of the other bundled photos, preprocessed
        assert tuple(background.shape) == (16, 3, 224, 224)


def test_explains_a_bundled_nobel_laureate_by_name(tmp_path, capsys):
    """The photos shipped in interp_helpers/package_data (here Marie Curie, a greyscale JPEG) work by name."""
    out = tmp_path / "curie.png"
    assert main(["explain", "curie", "--method", "smoothgrad", "--n-samples", "2", "--top-k", "2",
                 "--out", str(out)]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    figure = _figure(out)
    assert figure.shape[1] > 2.5 * figure.shape[0] > 600


def test_top_k_beyond_five_and_a_target_by_index(tmp_path):
    out = tmp_path / "seven.png"
    assert main(["explain", "rocket", "--method", "gradient", "--top-k", "7", "--out", str(out)]) == 0
    figure = _figure(out)
    assert figure.shape[1] > 6 * figure.shape[0]  # the photo and seven maps side by side (five would be < 6)
    assert main(["explain", "rocket", "--method", "gradient", "--target", "657", "--out", str(out)]) == 0
    figure = _figure(out)
    assert 1.5 * figure.shape[0] < figure.shape[1] < 2.5 * figure.shape[0]  # the photo and one map


def test_help_lists_the_options(capsys):
    with pytest.raises(SystemExit) as exit_:
        main(["explain", "--help"])
    assert exit_.value.code == 0
    text = capsys.readouterr().out
    for option in ("--model", "--method", "--target", "--top-k", "--n-samples", "--noise-level", "--seed", "--out",
                   "--device"):
        assert option in text


@pytest.mark.parametrize("args,needle,status", [
    (["explain", "/no/such/photo.png"], "/no/such/photo.png", 1),
    (["explain", "chelsea", "--model", "vgg16"], "vgg16", 2),
    (["explain", "chelsea", "--method", "lime"], "lime", 2),
    (["explain", "chelsea", "--target", "not a class"], "not a class", 2),
    (["explain", "chelsea", "--target", "1000"], "1000", 2),
    (["explain", "chelsea", "--n-samples", "0"], "--n-samples", 2),
    (["explain", "chelsea", "--top-k", "11"], "--top-k", 2),
    (["explain", "chelsea", "--out", "figure.jpg"], "--out", 2),
    (["explain", "chelsea", "--device", "toaster"], "toaster", 2),
])
def test_errors_are_one_line_without_traceback(capsys, args, needle, status):
    try:
        code = main(args)
    except SystemExit as exc:  # argparse's own usage errors
        code = exc.code
    assert code == status
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and needle in err and "Traceback" not in err


def test_non_image_file_fails_cleanly(tmp_path, capsys):
    bad = tmp_path / "notes.png"
    bad.write_text("hello")
    assert main(["explain", str(bad)]) == 2
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1 and "notes.png" in lines[0] and "Traceback" not in lines[0]
