import hashlib
import shutil
from pathlib import Path

import pytest

import interp_helpers as ih
from interp_helpers.data import BOSTON_COLUMNS, BOSTON_SHA256, DATA_DIR


def test_load_boston_shape_columns_and_known_values():
    X, y = ih.load_boston()
    assert X.shape == (506, 13) and y.shape == (506,)
    assert list(X.columns) == list(BOSTON_COLUMNS) and y.name == "MEDV"
    # first row of Harrison & Rubinfeld's table, as printed in every copy of it
    assert X.iloc[0]["CRIM"] == pytest.approx(0.00632) and X.iloc[0]["RM"] == pytest.approx(6.575)
    assert y.iloc[0] == pytest.approx(24.0)
    assert y.max() == pytest.approx(50.0)  # the censored maximum of MEDV
    assert set(X["CHAS"].unique()) == {0, 1}
    assert not X.isna().any().any()


def test_shipped_file_matches_hash_readme_and_mlxtend_copy():
    data = (DATA_DIR / "boston_housing.csv").read_bytes()
    assert hashlib.sha256(data).hexdigest() == BOSTON_SHA256
    assert BOSTON_SHA256 in (DATA_DIR / "README.md").read_text()
    import mlxtend

    original = Path(mlxtend.__file__).parent / "data" / "data" / "boston_housing.csv"
    assert original.read_bytes() == data


def test_changed_file_is_refused(tmp_path):
    bad = tmp_path / "boston.csv"
    shutil.copy(DATA_DIR / "boston_housing.csv", bad)
    with bad.open("a") as f:
        f.write("1,2,3\n")
    with pytest.raises(ValueError, match="SHA-256"):
        ih.load_boston(bad)
    with pytest.raises(FileNotFoundError, match="missing.csv"):
        ih.load_boston(tmp_path / "missing.csv")
