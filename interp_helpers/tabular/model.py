"""Fitting and scoring gradient-boosted trees on a table -- computation only.

* :func:`train_catboost` -- a ``CatBoostRegressor`` (Prokhorenkova et al. 2018,
  "CatBoost: unbiased boosting with categorical features") on a seeded
  train/test split with a bounded thread count, returned as a :class:`CatBoostFit`;
* :func:`regression_metrics` -- RMSE and R^2;
* :func:`compare_baselines` -- the CatBoost model next to ordinary least squares
  and a single CART decision tree on the same split (:class:`BaselineComparison`).

catboost, scikit-learn and pandas are imported inside the functions that need them.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from ..validation import check_number, check_positive_int, check_seed
from .checks import check_features, check_target

if TYPE_CHECKING:
    import pandas as pd

__all__ = [
    "DEFAULT_CATBOOST_PARAMS",
    "BaselineComparison",
    "CatBoostFit",
    "compare_baselines",
    "regression_metrics",
    "train_catboost",
]

#: Default boosting settings of :func:`train_catboost`. ``depth=6`` is CatBoost's
#: default depth; 500 rounds of a 0.05 step are a moderate setting that trains in
#: about a second on a few hundred rows with two threads.
DEFAULT_CATBOOST_PARAMS: dict[str, Any] = {"iterations": 500, "depth": 6, "learning_rate": 0.05}

#: Parameters :func:`train_catboost` sets itself (through ``seed``/``thread_count``) or that
#: would break the train/test protocol; passing them in ``**params`` is an error.
_RESERVED_PARAMS = {
    "random_seed": "seed",
    "random_state": "seed",
    "thread_count": "thread_count",
    "eval_set": None,
    "cat_features": None,
    "verbose": None,
    "silent": None,
    "logging_level": None,
    "allow_writing_files": None,
    "train_dir": None,
}


@dataclass(frozen=True)
class CatBoostFit:
    """A fitted ``CatBoostRegressor`` with the split it was trained and tested on.

    ``metrics`` holds RMSE and R^2 on both splits (keys ``rmse_train``,
    ``rmse_test``, ``r2_train``, ``r2_test``); ``params`` the CatBoost
    parameters used (without logging options).
    """

    model: Any
    X_train: pd.DataFrame
    X_test: pd.DataFrame
    y_train: pd.Series
    y_test: pd.Series
    seed: int
    params: dict[str, Any]
    metrics: dict[str, float]
    dataset: str = ""

    @property
    def feature_names(self) -> tuple[str, ...]:
        return tuple(self.X_train.columns)


def regression_metrics(y_true: Any, y_pred: Any) -> dict[str, float]:
    """Root-mean-squared error and coefficient of determination R^2 of ``y_pred`` against ``y_true``."""
    if not hasattr(y_true, "__len__"):
        raise TypeError(f"y_true must be a pandas Series or a 1-D array, got {type(y_true).__name__}")
    truth = check_target(y_true, len(y_true), "y_true")
    pred = check_target(y_pred, len(truth), "y_pred").to_numpy()
    t = truth.to_numpy()
    residual = float(np.sum((t - pred) ** 2))
    total = float(np.sum((t - t.mean()) ** 2))
    return {
        "rmse": math.sqrt(residual / len(t)),
        "r2": 1.0 - residual / total if total > 0 else float("nan"),
    }


def _split_metrics(
    model: Any, X_train: pd.DataFrame, y_train: pd.Series, X_test: pd.DataFrame, y_test: pd.Series
) -> dict[str, float]:
    train = regression_metrics(y_train, np.asarray(model.predict(X_train), dtype=np.float64))
    test = regression_metrics(y_test, np.asarray(model.predict(X_test), dtype=np.float64))
    return {
        "rmse_train": train["rmse"],
        "rmse_test": test["rmse"],
        "r2_train": train["r2"],
        "r2_test": test["r2"],
    }


def train_catboost(
    X: Any,
    y: Any,
    *,
    test_size: float = 0.25,
    seed: int = 0,
    thread_count: int = 2,
    dataset: str = "",
    **params: Any,
) -> CatBoostFit:
    """Fit a ``CatBoostRegressor`` on a seeded random split and score it on the held-out part.

    The split is ``sklearn.model_selection.train_test_split(random_state=seed)``;
    CatBoost gets ``random_seed=seed`` and ``thread_count``, so the same
    arguments give the same model. The held-out part is used for nothing but
    scoring (no early stopping on it). Defaults: :data:`DEFAULT_CATBOOST_PARAMS`,
    overridable through ``**params`` (any ``CatBoostRegressor`` argument except
    the seed, thread count, logging and ``eval_set``/``cat_features``). Trees stay
    symmetric (``grow_policy="SymmetricTree"``, CatBoost's default): for
    ``Depthwise``/``Lossguide`` trees, CatBoost 1.2's native SHAP values -- which
    ``shap`` uses -- broke additivity by up to 0.05 in our tests, and
    :func:`~interp_helpers.tabular.reference.brute_force_tree_shap` reads symmetric trees only.

    Parameters
    ----------
    X, y:
        Numeric features (DataFrame; NaN/inf rejected) and a finite target, one per row.
    test_size:
        Fraction of rows held out, strictly between 0 and 1.
    seed:
        Seeds the split and CatBoost (a non-negative int; ``None`` draws a fresh
        seed from OS entropy, recorded in the result's ``seed``).
    thread_count:
        Threads CatBoost may use (>= 1); 2 by default to suit small shared machines.
    dataset:
        A label carried along for plot titles, e.g. ``"Boston housing"``.
    """
    from catboost import CatBoostRegressor
    from sklearn.model_selection import train_test_split

    frame = check_features(X, "X")
    target = check_target(y, len(frame), "y")
    if target.nunique() < 2:
        raise ValueError(f"y must take at least two distinct values, got the constant {target.iloc[0]!r}")
    test_size = check_number(test_size, "test_size", low=0.0, high=1.0, low_open=True, high_open=True)
    seed = check_seed(seed, "seed")
    thread_count = check_positive_int(thread_count, "thread_count")
    if not isinstance(dataset, str):
        raise TypeError(f"dataset must be a string label, got {type(dataset).__name__}")
    for key in params:
        if key in _RESERVED_PARAMS:
            hint = f"; pass {_RESERVED_PARAMS[key]}= instead" if _RESERVED_PARAMS[key] else ""
            raise ValueError(f"params must not set {key!r}{hint}")
    if params.get("grow_policy", "SymmetricTree") != "SymmetricTree":
        raise ValueError(
            f"grow_policy must be 'SymmetricTree' (CatBoost's default), got {params['grow_policy']!r}: "
            "SHAP values of other tree shapes fail the additivity check in CatBoost 1.2"
        )
    n_test = math.ceil(test_size * len(frame))
    if n_test < 2 or len(frame) - n_test < 2:
        raise ValueError(
            f"test_size={test_size} leaves {len(frame) - n_test} training and {n_test} test rows "
            f"out of {len(frame)}; each split needs at least 2"
        )

    X_train, X_test, y_train, y_test = train_test_split(frame, target, test_size=test_size, random_state=seed)
    settings = {**DEFAULT_CATBOOST_PARAMS, **params}
    model = CatBoostRegressor(
        **settings,
        random_seed=seed,
        thread_count=thread_count,
        verbose=False,
        allow_writing_files=False,
    )
    model.fit(X_train, y_train)
    return CatBoostFit(
        model=model,
        X_train=X_train,
        X_test=X_test,
        y_train=y_train,
        y_test=y_test,
        seed=seed,
        params={**settings, "random_seed": seed, "thread_count": thread_count},
        metrics=_split_metrics(model, X_train, y_train, X_test, y_test),
        dataset=dataset,
    )


@dataclass(frozen=True)
class BaselineComparison:
    """Held-out and training scores of CatBoost and two simpler models on the same split.

    ``table`` has one row per model (``CatBoost``, ``Linear regression``,
    ``Decision tree (depth d)``) and columns ``rmse_train``, ``rmse_test``,
    ``r2_train``, ``r2_test``; ``models`` maps the same names to the fitted models.
    """

    table: pd.DataFrame
    models: dict[str, Any] = field(repr=False)


def compare_baselines(fit: CatBoostFit, *, tree_max_depth: int | None = 6, seed: int = 0) -> BaselineComparison:
    """Score ``fit.model`` against ordinary least squares and one CART tree on ``fit``'s split.

    The single tree (``sklearn.tree.DecisionTreeRegressor``) defaults to the
    depth of CatBoost's trees (6), so the table shows what boosting hundreds of
    such trees buys over one of them; ``tree_max_depth=None`` grows it until the
    leaves are pure. ``seed`` breaks the tree's ties between equally good splits.
    """
    import pandas as pd
    from sklearn.linear_model import LinearRegression
    from sklearn.tree import DecisionTreeRegressor

    if not isinstance(fit, CatBoostFit):
        raise TypeError(f"fit must be the CatBoostFit returned by train_catboost, got {type(fit).__name__}")
    if tree_max_depth is not None:
        tree_max_depth = check_positive_int(tree_max_depth, "tree_max_depth")
    seed = check_seed(seed, "seed")
    depth = "unlimited" if tree_max_depth is None else tree_max_depth
    models: dict[str, Any] = {
        "CatBoost": fit.model,
        "Linear regression": LinearRegression().fit(fit.X_train, fit.y_train),
        f"Decision tree (depth {depth})": DecisionTreeRegressor(max_depth=tree_max_depth, random_state=seed).fit(
            fit.X_train, fit.y_train
        ),
    }
    rows = {
        label: _split_metrics(model, fit.X_train, fit.y_train, fit.X_test, fit.y_test)
        for label, model in models.items()
    }
    table = pd.DataFrame.from_dict(rows, orient="index")[["rmse_train", "rmse_test", "r2_train", "r2_test"]]
    table.index.name = "model"
    return BaselineComparison(table=table, models=models)
