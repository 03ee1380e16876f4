"""python -m interp_helpers explain: a figure for one's own photo, one-line errors, no tracebacks."""
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from interp_helpers.cli import main


def _run(*args):
    return subprocess.run([sys.executable, "-m", "interp_helpers", *args], capture_output=True, text=True,
                          timeout=300, env={"TQDM_DISABLE": "1", "PATH": "/usr/bin:/bin"})


def test_explain_writes_a_figure(tmp_path):
    photo = tmp_path / "my photo.jpg"
    Image.open(__import__("interp_helpers").example_images()[2].path()).save(photo)
    out = tmp_path / "figs" / "cat.png"
    result = _run("explain", str(photo), "--method", "gradient", "--top-k", "2", "--out", str(out))
    assert result.returncode == 0, result.stderr
    assert f"wrote {out}" in result.stdout
    figure = np.asarray(Image.open(out))
    assert figure.shape[1] > 2.5 * figure.shape[0] > 600  # photo + two maps side by side


@pytest.mark.parametrize("method", ["smoothgrad", "expected_gradients"])
def test_sampling_methods_and_target_by_label(tmp_path, capsys, method):
    out = tmp_path / "coffee.png"
    assert main(["explain", "coffee", "--method", method, "--target", "espresso", "--n-samples", "2",
                 "--out", str(out)]) == 0
    assert out.stat().st_size > 10_000


def test_explains_a_bundled_nobel_laureate_by_name(tmp_path, capsys):
    """The photos shipped in interp_helpers/package_data (here Marie Curie, a greyscale JPEG) work by name."""
    out = tmp_path / "curie.png"
    assert main(["explain", "curie", "--method", "smoothgrad", "--n-samples", "2", "--top-k", "2",
                 "--out", str(out)]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    figure = np.asarray(Image.open(out))
    assert figure.shape[1] > 2.5 * figure.shape[0] > 600


def test_top_k_beyond_five_explains_that_many_classes(tmp_path):
    out = tmp_path / "seven.png"
    assert main(["explain", "rocket", "--method", "gradient", "--top-k", "7", "--out", str(out)]) == 0
    figure = np.asarray(Image.open(out))
    assert figure.shape[1] > 6 * figure.shape[0]  # the photo and seven maps side by side (five would be < 6)


def test_help_lists_the_options():
    result = _run("explain", "--help")
    assert result.returncode == 0
    for option in ("--model", "--method", "--target", "--top-k", "--n-samples", "--out"):
        assert option in result.stdout


@pytest.mark.parametrize("args,needle,status", [
    (["explain", "/no/such/photo.png"], "/no/such/photo.png", 1),
    (["explain", "chelsea", "--model", "vgg16"], "vgg16", 2),
    (["explain", "chelsea", "--target", "not a class"], "not a class", 2),
    (["explain", "chelsea", "--target", "1000"], "1000", 2),
    (["explain", "chelsea", "--n-samples", "0"], "--n-samples", 2),
    (["explain", "chelsea", "--out", "figure.jpg"], "--out", 2),
])
def test_errors_are_one_line_without_traceback(capsys, args, needle, status):
    try:
        code = main(args)
    except SystemExit as exc:  # argparse's own usage errors
        code = exc.code
    assert code == status
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and needle in err and "Traceback" not in err


def test_non_image_file_fails_cleanly(tmp_path):
    bad = tmp_path / "notes.png"
    bad.write_text("hello")
    result = _run("explain", str(bad))
    assert result.returncode != 0
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1 and "notes.png" in lines[0] and "Traceback" not in result.stderr

