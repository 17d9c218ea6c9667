"""Population Stability Index (PSI) drift between the training rows and a scoring batch.

At training, :func:`reference_profile` bins every feature and the score on the training rows and
keeps the share of rows in each bin, as JSON for the model metadata. At scoring, a
:class:`DriftCounter` counts each chunk's rows into the same bins. Counters from chunks or Dask
partitions merge by adding counts, so the report is the same however the batch was split.

Bin conventions:

- Every bin is left-closed, ``[a, b)``: a value equal to an edge falls in the bin above it. The
  lowest bin is ``(-inf, e0)`` and the highest ``[e_last, +inf)``, so a value outside the training
  range still lands in a bin (an outer one).
- Numeric edges are the training quantiles at 1/bins, ..., (bins-1)/bins, deduplicated. They use
  ``inverted_cdf``, so every edge is a value seen in training. For a continuous feature the
  training minimum falls in the lowest bin and the maximum in the highest.
- Heavy ties: a value shared by many rows becomes a single edge, so all of those rows share one bin.
  For example, a count that is 0 for 70% of rows gives a bin ``[0, 1)`` holding 70%. If the
  training minimum is an edge, the bin below it is empty at training and catches values under the
  training range. If the training maximum is an edge (at least 1/bins of the rows are at the max),
  an extra edge just above it gives the max a bin of its own (labelled ``= max``). A bin ``> max``
  follows, empty at training. A constant column therefore has the bins ``< c``, ``= c`` and ``> c``.
- Missing (NaN) is a separate bin for every feature. ``+-inf`` are values and fall in the outer bins.
- Categorical: one bin per training level, then an ``unseen`` bin, then the missing bin. In the
  prepared model matrix (:func:`pipeline.modeling.model.prepare_matrix`) an unseen value has already become
  missing, so it is counted as missing. Pass the raw column to count it as unseen.
- Score: fixed bins over 0-100, each 100/bins wide and left-closed, except the last, which is
  closed on both sides: ``[0, 10)``, ..., ``[90, 100]``.
- PSI sums over all bins, the missing bin included. Shares are floored at 1e-4, so a bin that is
  empty on one side stays finite, and a bin empty on both sides adds 0.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from pipeline.contracts.features import FeatureSpec
from pipeline.errors import ModelError
from pipeline.modeling.model import category_levels

PROFILE_VERSION = 1
SCORE_RANGE = (0.0, 100.0)
MISSING = "missing"
UNSEEN = "unseen"


def psi(expected: np.ndarray, actual: np.ndarray, *, floor: float = 1e-4) -> float:
    """sum((a - e) * ln(a / e)) over bins, with shares floored at ``floor`` so empty bins stay finite."""
    e = np.maximum(np.asarray(expected, dtype=float), floor)
    a = np.maximum(np.asarray(actual, dtype=float), floor)
    if e.shape != a.shape:
        raise ValueError(f"expected and actual shares differ in shape: {e.shape} vs {a.shape}")
    return float(np.sum((a - e) * np.log(a / e)))


def status_of(value: float, *, watch: float, act: float) -> str:
    """"act" above ``act``, "watch" above ``watch``, else "ok"."""
    return "act" if value > act else "watch" if value > watch else "ok"


# --- binning -------------------------------------------------------------------------------------

def _numeric_values(col: pd.Series) -> np.ndarray:
    """The column as float64 with NaN for missing, coerced as prepare_matrix does."""
    return np.asarray(pd.to_numeric(col, errors="coerce").astype("float64").to_numpy(), dtype=float)


def _quantile_edges(values: np.ndarray, bins: int) -> list[float]:
    """Deduplicated training quantile edges, plus a guard edge that gives a heavily tied max its own bin."""
    finite = values[np.isfinite(values)]
    if finite.size == 0:
        return []
    probs = np.arange(1, bins) / bins
    edges = np.unique(np.quantile(finite, probs, method="inverted_cdf"))
    top = float(finite.max())
    above = np.nextafter(top, np.inf)
    if edges[-1] == top and np.isfinite(above):
        edges = np.append(edges, above)
    return [float(e) for e in edges]


def _numeric_counts(values: np.ndarray, edges: np.ndarray) -> np.ndarray:
    """Rows per left-closed bin, then the missing bin."""
    missing = np.isnan(values)
    index = np.searchsorted(edges, values[~missing], side="right")
    return np.append(np.bincount(index, minlength=len(edges) + 1), missing.sum()).astype(np.int64)


def _categorical_counts(col: pd.Series, levels: list[str]) -> np.ndarray:
    """Rows per training level, then unseen values, then missing."""
    dtype = col.dtype
    if isinstance(dtype, pd.CategoricalDtype) and [str(c) for c in dtype.categories] == levels:
        codes = np.asarray(col.cat.codes.to_numpy(), dtype=np.int64)
        unseen = 0
        missing = int((codes < 0).sum())
    else:  # a raw column: cast as prepare_matrix does, but keep unseen apart from missing
        text = col.astype("object").where(col.notna(), None)
        codes = np.asarray(pd.Categorical(text, categories=levels).codes, dtype=np.int64)
        is_missing = col.isna().to_numpy()
        missing = int(is_missing.sum())
        unseen = int(((codes < 0) & ~is_missing).sum())
    counts = np.bincount(codes[codes >= 0], minlength=len(levels))
    return np.append(counts, [unseen, missing]).astype(np.int64)


def _score_values(scores: np.ndarray, rows: int) -> np.ndarray:
    values = np.asarray(scores, dtype=float).ravel()
    if values.size != rows:
        raise ValueError(f"{values.size} scores for {rows} feature rows")
    if not np.isfinite(values).all():
        raise ValueError("scores must be finite (0-100)")
    return values


def _score_counts(scores: np.ndarray, edges: np.ndarray) -> np.ndarray:
    return np.bincount(np.searchsorted(edges, scores, side="right"), minlength=len(edges) + 1).astype(np.int64)


def _check_columns(x: pd.DataFrame, names: list[str]) -> None:
    missing = [n for n in names if n not in x.columns]
    if missing:
        raise ModelError(f"the feature matrix lacks column(s) the drift profile needs: {', '.join(missing)}")


def _fmt(value: float) -> str:
    return str(int(value)) if float(value).is_integer() and abs(value) < 1e15 else f"{value:.6g}"


def _interval_labels(edges: list[float], *, low: float | None = None, high: float | None = None) -> list[str]:
    """Readable names of the left-closed bins cut by ``edges``; ``low``/``high`` close the outer bins
    when the values have a known range (the score). A guard edge one step above a value ``v`` shows
    as ``= v`` and ``> v``."""
    def guards(i: int) -> bool:  # edges[i] is the guard just above edges[i - 1]
        return i > 0 and edges[i] == np.nextafter(edges[i - 1], np.inf)

    if not edges:
        return ["all values"]
    labels = [f"[{_fmt(low)}, {_fmt(edges[0])})" if low is not None else f"< {_fmt(edges[0])}"]
    for i in range(1, len(edges)):
        if guards(i):
            labels.append(f"= {_fmt(edges[i - 1])}")
        elif guards(i - 1):
            labels.append(f"({_fmt(edges[i - 2])}, {_fmt(edges[i])})")
        else:
            labels.append(f"[{_fmt(edges[i - 1])}, {_fmt(edges[i])})")
    last = len(edges) - 1
    if high is not None:
        labels.append(f"[{_fmt(edges[last])}, {_fmt(high)}]")
    elif guards(last):
        labels.append(f"> {_fmt(edges[last - 1])}")
    else:
        labels.append(f">= {_fmt(edges[last])}")
    return labels


# --- the reference profile -----------------------------------------------------------------------

def reference_profile(x: pd.DataFrame, specs: list[FeatureSpec], scores: np.ndarray, *,
                      bins: int) -> dict[str, Any]:
    """JSON-serialisable reference stored in the model metadata at training time: per numeric feature,
    quantile bin edges from the training rows and the share per bin, plus a separate missing share;
    per categorical feature, the share per training level plus missing; and the same for the score
    (fixed bins over 0-100). Bin conventions are in the module docstring."""
    if bins < 2:
        raise ValueError(f"bins must be at least 2, got {bins}")
    if len(x) == 0:
        raise ValueError("no training rows to build a drift reference from")
    _check_columns(x, [s.name for s in specs])
    rows = len(x)
    score_edges = [float(e) for e in np.linspace(*SCORE_RANGE, bins + 1)[1:-1]]
    score_shares = _score_counts(_score_values(scores, rows), np.asarray(score_edges)) / rows
    features: list[dict[str, Any]] = []
    for spec in specs:
        col = x[spec.name]
        entry: dict[str, Any] = {"name": spec.name, "label": spec.label, "kind": spec.kind}
        if spec.kind == "categorical":
            if isinstance(col.dtype, pd.CategoricalDtype):
                levels = [str(c) for c in col.dtype.categories]
            else:
                levels = category_levels(x, [spec])[spec.name]
            entry["levels"] = levels
            counts = _categorical_counts(col, levels)
            counts = np.delete(counts, -2)  # unseen: always 0 against levels taken from these rows
        else:
            values = _numeric_values(col)
            entry["edges"] = _quantile_edges(values, bins)
            counts = _numeric_counts(values, np.asarray(entry["edges"], dtype=float))
        shares = counts / rows
        entry["shares"] = [float(s) for s in shares[:-1]]
        entry[MISSING] = float(shares[-1])
        features.append(entry)
    return {
        "version": PROFILE_VERSION,
        "bins": bins,
        "rows": rows,
        "score": {"edges": score_edges, "range": list(SCORE_RANGE), "shares": [float(s) for s in score_shares]},
        "features": features,
    }


# --- counting scoring rows -----------------------------------------------------------------------

@dataclass(frozen=True)
class _Binned:
    """One profiled quantity (a feature or the score): its bin names and expected shares."""

    name: str
    label: str
    kind: str
    bins: list[str]
    expected: np.ndarray
    edges: np.ndarray | None = None     # numeric and score
    levels: list[str] | None = None     # categorical

    def count(self, col: pd.Series) -> np.ndarray:
        if self.levels is not None:
            return _categorical_counts(col, self.levels)
        assert self.edges is not None
        return _numeric_counts(_numeric_values(col), self.edges)


def _binned(entry: dict[str, Any]) -> _Binned:
    shares = list(entry["shares"])
    if entry["kind"] == "categorical":
        levels = [str(v) for v in entry["levels"]]
        return _Binned(entry["name"], entry["label"], "categorical", [*levels, UNSEEN, MISSING],
                       np.array([*shares, 0.0, entry[MISSING]]), levels=levels)
    edges = [float(e) for e in entry["edges"]]
    return _Binned(entry["name"], entry["label"], "numeric", [*_interval_labels(edges), MISSING],
                   np.array([*shares, entry[MISSING]]), edges=np.asarray(edges, dtype=float))


def _fingerprint(reference: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(reference, sort_keys=True).encode()).hexdigest()[:16]


class DriftCounter:
    """Bin counts of scoring rows against a reference profile; add chunks, merge counters, then report."""

    def __init__(self, reference: dict[str, Any]) -> None:
        if reference.get("version") != PROFILE_VERSION:
            raise ValueError(f"unknown drift profile version {reference.get('version')!r}")
        self.reference = reference
        self.fingerprint = _fingerprint(reference)
        score = reference["score"]
        self._score_edges = np.asarray(score["edges"], dtype=float)
        low, high = score["range"]
        self._score_bins = _interval_labels(list(score["edges"]), low=low, high=high)
        self._score_expected = np.asarray(score["shares"], dtype=float)
        self._features = [_binned(f) for f in reference["features"]]
        self.rows = 0
        self.score_counts = np.zeros(len(self._score_expected), dtype=np.int64)
        self.feature_counts = [np.zeros(len(f.expected), dtype=np.int64) for f in self._features]

    def add(self, x: pd.DataFrame, scores: np.ndarray) -> None:
        """Count a chunk: its feature rows (the prepared matrix, or raw columns) and their scores."""
        _check_columns(x, [f.name for f in self._features])
        values = _score_values(scores, len(x))
        self.score_counts += _score_counts(values, self._score_edges)
        for counts, feature in zip(self.feature_counts, self._features, strict=True):
            counts += feature.count(x[feature.name])
        self.rows += len(x)

    def merge(self, other: DriftCounter) -> DriftCounter:
        """A new counter holding both counters' rows (for Dask partitions); neither input changes."""
        if other.fingerprint != self.fingerprint:
            raise ValueError("cannot merge drift counters built against different reference profiles")
        merged = DriftCounter(self.reference)
        merged.rows = self.rows + other.rows
        merged.score_counts = self.score_counts + other.score_counts
        merged.feature_counts = [a + b for a, b in zip(self.feature_counts, other.feature_counts, strict=True)]
        return merged

    def to_dict(self) -> dict[str, Any]:
        """The reference and the counts, as JSON, to ship between processes."""
        return {
            "reference": self.reference,
            "rows": self.rows,
            "score": self.score_counts.tolist(),
            "features": [c.tolist() for c in self.feature_counts],
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> DriftCounter:
        counter = cls(d["reference"])
        score = np.asarray(d["score"], dtype=np.int64)
        features = [np.asarray(c, dtype=np.int64) for c in d["features"]]
        shapes = [len(score), *(len(c) for c in features)]
        wanted = [len(counter.score_counts), *(len(c) for c in counter.feature_counts)]
        if shapes != wanted:
            raise ValueError("drift counts do not match their reference profile's bins")
        counter.rows, counter.score_counts, counter.feature_counts = int(d["rows"]), score, features
        return counter

    def report(self, *, watch: float, act: float) -> dict[str, Any]:
        """PSI and status per feature (worst first) and for the score, with expected and actual shares
        per bin. ``status`` is the worst of them all; ``drifted`` and ``act`` name features only, so a
        feature called "score" cannot be mistaken for the model's score."""
        score = self._entry(self._score_bins, self._score_expected, self.score_counts, watch=watch, act=act)
        features = [
            {"name": f.name, "label": f.label, "kind": f.kind,
             **self._entry(f.bins, f.expected, counts, watch=watch, act=act)}
            for f, counts in zip(self._features, self.feature_counts, strict=True)
        ]
        out: dict[str, Any] = {"rows": self.rows, "reference_rows": int(self.reference["rows"]),
                               "thresholds": {"watch": float(watch), "act": float(act)}}
        if self.rows == 0:
            return {**out, "status": None, "note": "no rows scored: drift not computed",
                    "score": score, "features": features, "drifted": [], "act": []}
        features.sort(key=lambda f: -f["psi"])
        statuses = [score["status"], *(f["status"] for f in features)]
        worst = next((s for s in ("act", "watch") if s in statuses), "ok")
        return {**out, "status": worst, "score": score, "features": features,
                "drifted": [f["name"] for f in features if f["status"] != "ok"],
                "act": [f["name"] for f in features if f["status"] == "act"]}

    def _entry(self, bins: list[str], expected: np.ndarray, counts: np.ndarray, *,
               watch: float, act: float) -> dict[str, Any]:
        """PSI, status and per-bin shares of one quantity; None throughout when there are no rows."""
        if self.rows == 0:
            return {"psi": None, "status": None,
                    "bins": [{"bin": b, "expected": round(float(e), 6), "actual": None}
                             for b, e in zip(bins, expected, strict=True)]}
        actual = counts / self.rows
        value = psi(expected, actual)
        return {"psi": round(value, 6), "status": status_of(value, watch=watch, act=act),
                "bins": [{"bin": b, "expected": round(float(e), 6), "actual": round(float(a), 6)}
                         for b, e, a in zip(bins, expected, actual, strict=True)]}


def drift_warning(report: dict[str, Any]) -> str | None:
    """One log line naming the drifted features and score with their PSI ("watch" vs "act"), or None."""
    if not report.get("rows"):
        return None
    flagged = [("score", report["score"])] if report["score"]["status"] != "ok" else []
    flagged += [(f["name"], f) for f in report["features"] if f["status"] != "ok"]
    if not flagged:
        return None
    thresholds = report["thresholds"]
    parts = []
    for level in ("act", "watch"):
        named = sorted(((n, e["psi"]) for n, e in flagged if e["status"] == level), key=lambda item: -item[1])
        if named:
            parts.append(f"{level} (PSI > {thresholds[level]:g}): " + ", ".join(f"{n} {v:.2f}" for n, v in named))
    return f"drift against the training rows in {report['rows']:,} scored rows: " + "; ".join(parts)
