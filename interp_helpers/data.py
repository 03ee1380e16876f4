"""Tabular data shipped inside the package: the Boston housing table, hash-checked on load.

The file is package data (``interp_helpers/package_data/boston_housing.csv``), read with
:mod:`importlib.resources`, so a checkout, an editable install and an installed wheel all
find it. Provenance, licence and the ethics note: ``data/README.md`` of the repository.
"""
from __future__ import annotations

import hashlib
import io
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["BOSTON_COLUMNS", "BOSTON_FILE", "BOSTON_SHA256", "boston_file", "load_boston"]

#: The 13 feature columns of Harrison & Rubinfeld (1978), in file order; MEDV is the target.
BOSTON_COLUMNS = (
    "CRIM", "ZN", "INDUS", "CHAS", "NOX", "RM", "AGE",
    "DIS", "RAD", "TAX", "PTRATIO", "B", "LSTAT",
)

#: Where the table lives inside the ``interp_helpers`` package (see ``data/README.md`` for provenance).
BOSTON_FILE = "package_data/boston_housing.csv"

#: SHA-256 of ``boston_housing.csv`` as copied from the mlxtend 0.25.0 wheel.
BOSTON_SHA256 = "8594f084258ead302f20a7479463f7a7584d33fe00042d442a7101530c8b46de"


def boston_file() -> Traversable:
    """The bundled Boston housing CSV as an :mod:`importlib.resources` resource (``.read_bytes()``, ``str()``)."""
    return resources.files("interp_helpers").joinpath(BOSTON_FILE)


def load_boston(path: str | Path | None = None) -> tuple[pd.DataFrame, pd.Series]:
    """Load the Boston housing data (506 houses, 13 features) and the target MEDV.

    The file is the headerless 506 x 14 table that ships inside the ``mlxtend``
    wheel (``mlxtend/data/data/boston_housing.csv``), copied into this package
    (:data:`BOSTON_FILE`). Its SHA-256 is verified before parsing, and the bytes
    that were verified are the ones parsed, so a changed file is never used
    silently. Read ``data/README.md`` before using the ``B`` column: it encodes
    a racial statistic, and scikit-learn removed the data set in 1.2 for that reason.

    Parameters
    ----------
    path:
        A copy of the CSV to read instead; by default the bundled file (:func:`boston_file`).

    Returns
    -------
    (X, y):
        ``X`` a DataFrame 506 x 13 with columns :data:`BOSTON_COLUMNS`, ``y`` the
        Series ``MEDV`` (median home value in $1000s).
    """
    import pandas as pd

    if path is None:
        file: Traversable | Path = boston_file()
        if not file.is_file():
            raise FileNotFoundError(
                f"Boston housing file not found: {file}; the package was installed without its data files "
                f"(reinstall interp-helpers from a wheel or a full checkout)"
            )
    else:
        if not isinstance(path, (str, Path)):
            raise TypeError(f"path must be a str or pathlib.Path, got {type(path).__name__}")
        file = Path(path)
        if not file.is_file():
            raise FileNotFoundError(f"Boston housing file not found: {file}")
    data = file.read_bytes()
    digest = hashlib.sha256(data).hexdigest()
    if digest != BOSTON_SHA256:
        raise ValueError(
            f"{file} has SHA-256 {digest}, expected {BOSTON_SHA256}: the file was changed or replaced"
        )
    table = np.loadtxt(io.BytesIO(data), delimiter=",")
    frame = pd.DataFrame(table, columns=[*BOSTON_COLUMNS, "MEDV"])
    for column in ("CHAS", "RAD"):
        frame[column] = frame[column].astype(int)
    return frame[list(BOSTON_COLUMNS)], frame["MEDV"].rename("MEDV")
