"""The Boston housing table, shipped as package data and hash-checked on load (provenance: ``data/README.md``)."""
from __future__ import annotations

import hashlib
import io
from importlib import resources
from pathlib import Path

import numpy as np
import pandas as pd

#: The 13 feature columns of Harrison & Rubinfeld (1978), in file order; MEDV is the target.
BOSTON_COLUMNS = ("CRIM", "ZN", "INDUS", "CHAS", "NOX", "RM", "AGE", "DIS", "RAD", "TAX", "PTRATIO", "B", "LSTAT")
#: Where the table lives inside the ``interp_helpers`` package.
BOSTON_FILE = "package_data/boston_housing.csv"
#: SHA-256 of ``boston_housing.csv`` as copied from the mlxtend 0.25.0 wheel.
BOSTON_SHA256 = "8594f084258ead302f20a7479463f7a7584d33fe00042d442a7101530c8b46de"


def load_boston(path: str | Path | None = None) -> tuple[pd.DataFrame, pd.Series]:
    """The Boston housing data (Harrison & Rubinfeld 1978): ``X`` (506 x 13, :data:`BOSTON_COLUMNS`) and ``y``
    (``MEDV``, median home value in $1000s).

    Reads the bundled copy of mlxtend's headerless CSV (or the copy at ``path``) and parses exactly the
    bytes whose SHA-256 it verified, so a changed file is never used silently. Read ``data/README.md``
    before using the ``B`` column: it encodes a racial statistic (scikit-learn removed the data set in 1.2).
    """
    if path is None:
        file = resources.files("interp_helpers").joinpath(BOSTON_FILE)
        if not file.is_file():
            raise FileNotFoundError(f"Boston housing file not found: {file}; the package was installed without its "
                                    "data files (reinstall interp-helpers from a wheel or a full checkout)")
    elif isinstance(path, (str, Path)):
        file = Path(path)
        if not file.is_file():
            raise FileNotFoundError(f"Boston housing file not found: {file}")
    else:
        raise TypeError(f"path must be a str or pathlib.Path, got {type(path).__name__}")
    data = file.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != BOSTON_SHA256:
        raise ValueError(f"{file} has SHA-256 {digest}, expected {BOSTON_SHA256}: the file was changed or replaced")
    frame = pd.DataFrame(np.loadtxt(io.BytesIO(data), delimiter=","), columns=[*BOSTON_COLUMNS, "MEDV"])
    frame = frame.astype({"CHAS": int, "RAD": int})
    return frame[list(BOSTON_COLUMNS)], frame["MEDV"]
