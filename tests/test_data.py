"""interp_helpers.data: the Boston housing table, shipped as package data and hash-checked."""
import hashlib
import shutil
from importlib import resources
from pathlib import Path

import pytest

from interp_helpers import data as D
from interp_helpers.data import BOSTON_COLUMNS, BOSTON_FILE, BOSTON_SHA256, load_boston

REPO = Path(__file__).resolve().parents[1]
CSV = REPO / "interp_helpers" / BOSTON_FILE


def test_load_boston_shape_columns_and_known_values():
    X, y = load_boston()
    assert X.shape == (506, 13) and y.shape == (506,)
    assert list(X.columns) == list(BOSTON_COLUMNS) and y.name == "MEDV"
    # first row of Harrison & Rubinfeld's table, as printed in every copy of it
    assert X.iloc[0]["CRIM"] == pytest.approx(0.00632) and X.iloc[0]["RM"] == pytest.approx(6.575)
    assert y.iloc[0] == pytest.approx(24.0)
    assert y.max() == pytest.approx(50.0)  # the censored maximum of MEDV
    assert set(X["CHAS"].unique()) == {0, 1} and X["CHAS"].dtype.kind == X["RAD"].dtype.kind == "i"
    assert not X.isna().any().any()


def test_shipped_file_matches_hash_readme_and_mlxtend_copy():
    data = CSV.read_bytes()
    assert resources.files("interp_helpers").joinpath(BOSTON_FILE).read_bytes() == data  # the package's copy
    assert hashlib.sha256(data).hexdigest() == BOSTON_SHA256
    readme = (REPO / "data" / "README.md").read_text(encoding="utf-8")
    assert BOSTON_SHA256 in readme and f"interp_helpers/{BOSTON_FILE}" in readme
    assert not (REPO / "data" / "boston_housing.csv").exists()  # one copy, inside the package
    import mlxtend

    original = Path(mlxtend.__file__).parent / "data" / "data" / "boston_housing.csv"
    assert original.read_bytes() == data


def test_csv_is_package_data():
    """pyproject.toml ships the CSV in wheels (tests/test_wheel.py installs one and loads it)."""
    import fnmatch
    import tomllib

    config = tomllib.loads((REPO / "pyproject.toml").read_text(encoding="utf-8"))["tool"]["setuptools"]
    package = "interp_helpers.package_data"
    assert package in config["packages"]
    assert any(fnmatch.fnmatch(CSV.name, pattern) for pattern in config["package-data"][package])


def test_changed_file_is_refused(tmp_path):
    bad = tmp_path / "boston.csv"
    shutil.copy(CSV, bad)
    with bad.open("a") as f:
        f.write("1,2,3\n")
    with pytest.raises(ValueError, match="SHA-256"):
        load_boston(bad)
    with pytest.raises(FileNotFoundError, match="missing.csv"):
        load_boston(tmp_path / "missing.csv")
    with pytest.raises(TypeError, match="path must be a str or pathlib.Path, got int"):
        load_boston(3)
    good = tmp_path / "copy.csv"
    shutil.copy(CSV, good)
    X, y = load_boston(str(good))
    assert X.shape == (506, 13) and y.iloc[-1] == pytest.approx(11.9)  # the last row of the table


def test_missing_bundled_file_is_a_clear_error(monkeypatch):
    monkeypatch.setattr(D, "BOSTON_FILE", "package_data/gone.csv")
    with pytest.raises(FileNotFoundError, match="gone.csv.*data files"):
        load_boston()
