"""Argument checks shared by the tabular modules: feature tables, targets and fitted CatBoost models.

Generic checks (integers, fractions, seeds, flags) come from :mod:`interp_helpers.validation`;
these are the ones specific to tables. Each raises ``TypeError``/``ValueError`` whose
message names the argument. pandas and catboost are imported inside the functions.
"""
from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["check_catboost_model", "check_features", "check_model_features", "check_target"]


def check_features(X: Any, name: str = "X") -> pd.DataFrame:
    """Return ``X`` as a DataFrame of finite float64 columns, or raise naming ``name``.

    Accepts a DataFrame with unique, non-empty string column names and numeric
    (not boolean) columns, or a 2-D NumPy array (columns named ``x0, x1, ...``).
    """
    import pandas as pd

    if isinstance(X, pd.Series):
        raise TypeError(f"{name} must be a 2-D pandas DataFrame, got a Series {X.name!r}; use X.to_frame()")
    if isinstance(X, np.ndarray):
        if X.ndim != 2:
            raise ValueError(f"{name} must be 2-D (rows, features), got an array of shape {X.shape}")
        X = pd.DataFrame(X, columns=[f"x{i}" for i in range(X.shape[1])])
    if not isinstance(X, pd.DataFrame):
        raise TypeError(f"{name} must be a pandas DataFrame (or a 2-D NumPy array), got {type(X).__name__}")
    if X.shape[0] < 1 or X.shape[1] < 1:
        raise ValueError(f"{name} must have at least one row and one column, got shape {X.shape}")
    bad_names = [c for c in X.columns if not isinstance(c, str) or not c]
    if bad_names:
        raise TypeError(f"{name} column names must be non-empty strings, got {bad_names!r}")
    if X.columns.has_duplicates:
        raise ValueError(f"{name} has duplicate columns: {sorted(set(X.columns[X.columns.duplicated()]))!r}")
    non_numeric = [
        f"{c} ({X[c].dtype})"
        for c in X.columns
        if pd.api.types.is_bool_dtype(X[c]) or not pd.api.types.is_numeric_dtype(X[c])
    ]
    if non_numeric:
        raise TypeError(
            f"{name} must have numeric columns only (encode categories first), "
            f"got non-numeric columns: {', '.join(non_numeric)}"
        )
    values = X.to_numpy(dtype=np.float64)
    bad = ~np.isfinite(values)
    if bad.any():
        cols = [str(c) for c, b in zip(X.columns, bad.any(axis=0)) if b]
        raise ValueError(f"{name} contains NaN or inf in columns {cols!r}; impute or drop them first")
    return pd.DataFrame(values, index=X.index, columns=list(X.columns))


def check_target(y: Any, n: int, name: str = "y") -> pd.Series:
    """Return ``y`` as a float Series of length ``n`` with finite values, or raise naming ``name``.

    Accepts a Series, a one-column DataFrame, a 1-D array, a list or a tuple.
    """
    import pandas as pd

    if isinstance(y, pd.DataFrame):
        if y.shape[1] != 1:
            raise ValueError(f"{name} must be 1-D (one target per row), got a DataFrame of shape {y.shape}")
        y = y.iloc[:, 0]
    if isinstance(y, (list, tuple)):
        y = np.asarray(y)
    if isinstance(y, np.ndarray):
        if y.ndim != 1:
            raise ValueError(f"{name} must be 1-D (one target per row), got an array of shape {y.shape}")
        y = pd.Series(y, name="y")
    if not isinstance(y, pd.Series):
        raise TypeError(f"{name} must be a pandas Series or a 1-D array, got {type(y).__name__}")
    if pd.api.types.is_bool_dtype(y) or not pd.api.types.is_numeric_dtype(y):
        raise TypeError(f"{name} must be numeric, got dtype {y.dtype}")
    if len(y) != n:
        raise ValueError(f"{name} must have one value per row of X ({n}), got {len(y)}")
    values = y.to_numpy(dtype=np.float64)
    bad = np.flatnonzero(~np.isfinite(values))
    if bad.size:
        raise ValueError(f"{name} contains NaN or inf at positions {bad[:10].tolist()}; drop those rows first")
    return pd.Series(values, index=y.index, name=y.name)


def check_catboost_model(model: Any, name: str = "model") -> Any:
    """Return ``model`` if it is a fitted ``catboost.CatBoostRegressor``, else raise naming ``name``."""
    from catboost import CatBoostRegressor

    if not isinstance(model, CatBoostRegressor):
        raise TypeError(f"{name} must be a fitted catboost.CatBoostRegressor, got {type(model).__name__}")
    if not model.is_fitted():
        raise ValueError(f"{name} is not fitted; call train_catboost or model.fit first")
    return model


def check_model_features(model: Any, X: Any, name: str = "X") -> pd.DataFrame:
    """Check ``X`` (see :func:`check_features`) and put its columns in ``model``'s feature order.

    ``model`` is a fitted CatBoost model (its ``feature_names_``); missing or extra columns raise.
    """
    frame = check_features(X, name)
    expected = list(model.feature_names_)
    missing = [c for c in expected if c not in frame.columns]
    extra = [c for c in frame.columns if c not in expected]
    if missing or extra:
        raise ValueError(
            f"{name} must have exactly the model's features {expected!r}; "
            f"missing columns {missing!r}, unexpected columns {extra!r}"
        )
    return frame[expected]
