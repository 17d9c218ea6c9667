"""Why a lead's score changed since its previous run, exactly.

With the same model, the change of the raw score (log-odds) is the sum of the changes of the exact
SHAP contributions of the feature groups: the base value is the model's, so it cancels. Each group
gets the share of the score's points that its log-odds change carries; the shares add up to the
points change, and the log-odds changes add up to the raw-score change (checked per lead within
:data:`ADDITIVITY_TOLERANCE`, or nothing is written).

When the model changed between the two runs, the lead's current data is scored with the previous
model too: the change splits into the part due to the new model (new model on today's data minus the
previous model on today's data) and the part due to the lead's own data (the previous model, today
against then), which splits by group as above. Without the previous model's files, or if it needs
features this matrix lacks, the change is shown whole, and says why.

A trend over the last runs, as Dynamics 365 shows one: improving, steady or declining by the points
moved since the first of them; "new" for a lead scored for the first time.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from pipeline.config import HistoryParams
from pipeline.errors import DataError, ModelError
from pipeline.explain.reasons import Groups, Wording, lead_features
from pipeline.modeling.model import LoadedModel
from pipeline.scoring.history import Previous

ADDITIVITY_TOLERANCE = 1e-6
CHANGE_COLUMNS = ["previous_score", "score_change", "previous_scored_at", "trend", "change_reason"]
MINUS = "\u2212"
DETAIL_GROUPS = 10  # groups listed one by one in change_detail; the rest are summed in one entry


@dataclass(frozen=True)
class Explained:
    """One model's view of some leads: scores, raw scores (log-odds: base + contributions) and the
    contribution of each feature group, with the words for each group's current value."""

    score: np.ndarray            # int points
    raw: np.ndarray
    base: np.ndarray
    groups: Groups
    contributions: np.ndarray    # leads x groups, log-odds
    words: Callable[[np.ndarray, np.ndarray], np.ndarray]  # (rows, group per row) -> the group's value, worded

    @classmethod
    def of(cls, x: pd.DataFrame, phi: np.ndarray, base: np.ndarray, score: np.ndarray,
           groups: Groups, wording: Wording) -> Explained:
        contributions = groups.sum(phi)
        lead = lead_features(phi, groups)

        def words(rows: np.ndarray, group: np.ndarray) -> np.ndarray:
            out = np.full(len(rows), "", dtype=object)
            feature = lead[rows, group]
            for j in np.unique(feature):
                at = feature == j
                g = int(group[at][0])
                out[at] = wording.column(x, int(j), rows[at], group=groups.titles[g])
            return out

        return cls(score=np.asarray(score, dtype=np.int64), raw=base + contributions.sum(axis=1), base=base,
                   groups=groups, contributions=contributions, words=words)


# (model_version, registry_version) of a previous run -> that model explaining today's rows, or why not
OldExplainer = Callable[[str, str | None], "tuple[Callable[[pd.DataFrame], Explained] | None, str]"]


@dataclass(frozen=True)
class Changes:
    columns: pd.DataFrame        # CHANGE_COLUMNS, one row per lead
    detail: np.ndarray           # per lead, the decomposition as JSON ("" for a new lead)
    worst_residual: float        # the largest |sum of group changes - raw-score change|, log-odds


def _signed(points: int) -> str:
    return f"+{points}" if points > 0 else (f"{MINUS}{-points}" if points < 0 else "0")


def _shares(points: np.ndarray, delta: np.ndarray) -> np.ndarray:
    """Each group's share of ``points`` in proportion to its log-odds change (rows x groups)."""
    total = delta.sum(axis=1)
    safe = np.where(np.abs(total) > 1e-12, total, 1.0)
    return np.where(np.abs(total)[:, None] > 1e-12, points[:, None] * delta / safe[:, None], 0.0)


def whole_points(shares: np.ndarray, totals: np.ndarray) -> np.ndarray:
    """``shares`` (rows x groups, each row adding up to its whole ``totals``) as whole points that add up
    to the same totals: rounded down, the points left over going to the largest remainders."""
    floor = np.floor(shares)
    left = np.rint(np.asarray(totals, dtype=float) - floor.sum(axis=1)).astype(np.int64)  # 0 <= left < groups
    ranks = np.argsort(np.argsort(-(shares - floor), axis=1, kind="stable"), axis=1, kind="stable")
    return (floor + (ranks < left[:, None])).astype(np.int64)


def trend(start: np.ndarray, now: np.ndarray, *, points: int) -> np.ndarray:
    """improving / steady / declining by the points moved from the start of the window (``start``, NaN
    for a lead scored for the first time: "new") to now."""
    moved = np.asarray(now, dtype=float) - np.nan_to_num(np.asarray(start, dtype=float))
    return np.where(np.isnan(start), "new", np.where(moved >= points, "improving",
                    np.where(moved <= -points, "declining", "steady"))).astype(object)


def changes(now: Explained, rows: pd.DataFrame, *, model_version: str, previous: Previous,
            old: OldExplainer, params: HistoryParams, top: int, causes: bool = True, detail: bool = True) -> Changes:
    """The change of each lead of ``rows`` (scored as ``now`` by ``model_version``) since its previous run.
    Without ``causes`` (no SHAP values: score.explain off), the change is said without its causes;
    without ``detail`` the JSON decomposition is not built (a CSV has no column for it)."""
    ids = rows["record_id"].astype(str).to_numpy()
    n = len(ids)
    prev = previous.latest.reindex(ids)
    has_prev = prev["score"].notna().to_numpy()
    prev_score = pd.to_numeric(prev["score"]).to_numpy(dtype=float)
    out_prev = pd.array(np.where(has_prev, prev_score, 0).astype(np.int64), dtype="Int64")
    out_prev[~has_prev] = pd.NA
    change = pd.array(np.where(has_prev, now.score - np.nan_to_num(prev_score), 0).astype(np.int64), dtype="Int64")
    change[~has_prev] = pd.NA
    since = prev["scored_at"].fillna("").astype(str).str[:10].to_numpy(dtype=object)
    reason = np.full(n, "", dtype=object)
    details = np.full(n, "", dtype=object)
    worst = 0.0

    trends = trend(_window_start(previous, ids, runs=params.trend_runs), now.score, points=params.trend_points)

    same = has_prev & (prev["model_version"].to_numpy(dtype=object) == model_version)
    if not causes:
        for i in np.flatnonzero(has_prev):
            model_note = "" if same[i] else f"; new model {model_version} (was {prev['model_version'].iloc[i]})"
            reason[i] = (f"{int(prev_score[i])} \u2192 {int(now.score[i])} since {since[i]}{model_note} "
                         "(its causes need score.explain: true)")
        return Changes(columns=pd.DataFrame({"previous_score": out_prev, "score_change": change,
                                             "previous_scored_at": since, "trend": trends, "change_reason": reason}),
                       detail=details, worst_residual=0.0)
    if same.any():
        at = np.flatnonzero(same)
        worst = max(worst, _describe(at, now, now, prev, previous, since, reason, details if detail else None,
                                     top=top, model_points=np.zeros(len(at), dtype=np.int64), model_note=None))
    changed = has_prev & ~same
    versions = prev["model_version"].to_numpy(dtype=object)
    registry_versions = prev["registry_version"].astype(object).where(prev["registry_version"].notna(), None) \
        .to_numpy(dtype=object)
    for version in sorted({str(v) for v in versions[changed]}):
        at = np.flatnonzero(changed & (versions == version))
        registry_version = registry_versions[at[0]]
        note = f"new model {model_version} (was {version})"
        explain_old, why = old(version, None if registry_version is None else str(registry_version))
        then = None
        if explain_old is not None:
            try:
                then = explain_old(rows.iloc[at])
            except (ModelError, DataError) as exc:
                why = str(exc).splitlines()[0][:200]
        if then is None:
            for i in at:
                reason[i] = (f"{int(prev_score[i])} \u2192 {int(now.score[i])} since {since[i]}: {note}; the new "
                             f"model's and the lead's own parts cannot be told apart ({why})")
                details[i] = json.dumps({"since": since[i], "from": int(prev_score[i]), "to": int(now.score[i]),
                                        "model_changed": True, "previous_model": version, "split": None,
                                        "why": why})
            continue
        worst = max(worst, _describe(at, then, now, prev, previous, since, reason, details if detail else None,
                                     top=top, model_points=now.score[at] - then.score, model_note=note,
                                     rows_of_then=True))
    columns = pd.DataFrame({"previous_score": out_prev, "score_change": change,
                            "previous_scored_at": since, "trend": trends, "change_reason": reason})
    if worst > ADDITIVITY_TOLERANCE:
        raise ModelError(f"the score-change decomposition is off by {worst:.2e} log-odds for some lead; "
                         "refusing to write reasons that do not add up")
    return Changes(columns=columns, detail=details, worst_residual=worst)


def _window_start(previous: Previous, ids: np.ndarray, *, runs: int) -> np.ndarray:
    """Per lead, its score at the start of the trend window (the oldest of its last ``runs`` - 1 earlier
    runs), NaN for a lead never scored before."""
    if previous.scores.empty or runs < 2:
        return np.full(len(ids), np.nan)
    earlier = previous.scores[previous.scores["record_id"].isin(ids)]  # oldest first per lead
    start = earlier.groupby("record_id", sort=False).tail(runs - 1).groupby("record_id", sort=False)["score"].first()
    return start.reindex(ids).to_numpy(dtype=float)


def _describe(at: np.ndarray, then: Explained, now: Explained, prev: pd.DataFrame, previous: Previous,
              since: np.ndarray, reason: np.ndarray, detail: np.ndarray | None, *, top: int, model_points: np.ndarray,
              model_note: str | None, rows_of_then: bool = False) -> float:
    """Word the change of the leads at positions ``at``: ``then`` is the previous run's model on today's
    data (``now`` itself when the model is the same); its group changes against the stored ones split
    the lead's own part of the change. Returns the largest additivity residual."""
    sub = prev.iloc[at]
    # then's rows are ``at`` in order when it was computed for them alone; else index into it
    pick = np.arange(len(at)) if rows_of_then else at
    stored = previous.contributions.reindex(index=sub.index, columns=then.groups.sources).to_numpy(dtype=float)
    stored = np.nan_to_num(stored)
    delta = then.contributions[pick] - stored
    raw_delta = then.raw[pick] - sub["raw_score"].to_numpy(dtype=float)
    residual = float(np.abs(delta.sum(axis=1) - raw_delta).max()) if len(at) else 0.0
    prev_points = sub["score"].to_numpy(dtype=float).astype(np.int64)
    data_points = then.score[pick] - prev_points
    shares = _shares(data_points.astype(float), delta)
    shown = whole_points(shares, data_points)
    order = np.lexsort((-np.abs(shares), -np.abs(shown)), axis=1)[:, :top]
    texts = [then.words(pick, order[:, s]) for s in range(order.shape[1])]
    titles = then.groups.titles
    for k, i in enumerate(at):
        head = f"{int(prev_points[k])} \u2192 {int(now.score[i])} since {since[i]}"
        parts = []
        if model_note is not None:
            parts.append(f"{model_note} {_signed(int(model_points[k]))}")
        moves = [(titles[g], int(shown[k, g]), str(texts[s][k])) for s, g in enumerate(order[k])
                 if shown[k, g] != 0]
        if moves:
            lead = "the lead's own data " + _signed(int(data_points[k])) + ": " if model_note is not None else ""
            rest = int(data_points[k]) - sum(p for _, p, _ in moves)
            others = [f"other signals {_signed(rest)}"] if rest else []
            parts.append(lead + "; ".join([*(f"{title} {_signed(p)} ({text})" for title, p, text in moves), *others]))
        elif data_points[k] != 0:
            parts.append(("the lead's own data " if model_note is not None else "")
                         + f"{_signed(int(data_points[k]))} from small changes across several signals")
        if not parts:
            reason[i] = f"unchanged ({int(now.score[i])}) since {since[i]}"
        else:
            reason[i] = head + ": " + "; ".join(parts)
        if detail is None:
            continue
        ranked = [int(g) for g in np.argsort(-np.abs(delta[k]), kind="stable") if delta[k, g] != 0]
        groups = [{"group": titles[g], "points": round(float(shares[k, g]), 3),
                   "log_odds": round(float(delta[k, g]), 6)} for g in ranked[:DETAIL_GROUPS]]
        remaining = np.asarray(ranked[DETAIL_GROUPS:], dtype=np.int64)
        if len(remaining):  # the remaining groups in one line, so the listed changes still add up
            groups.append({"group": f"{len(remaining)} other groups",
                           "points": round(float(shares[k, remaining].sum()), 3),
                           "log_odds": round(float(delta[k, remaining].sum()), 6)})
        record: dict[str, Any] = {"since": since[i], "from": int(prev_points[k]), "to": int(now.score[i]),
                                  "model_changed": model_note is not None,
                                  "model_points": int(model_points[k]), "data_points": int(data_points[k]),
                                  "raw_change": round(float(raw_delta[k]), 6), "groups": groups}
        detail[i] = json.dumps(record)
    return residual


def old_model_explainer(load: Callable[[str, str | None], LoadedModel], *, make: Callable[[LoadedModel], Any]
                        ) -> OldExplainer:
    """Wrap a loader of previous models (by version) for :func:`changes`: the loader's errors become
    the reason the split is not shown."""
    cache: dict[str, tuple[Any, str]] = {}

    def get(version: str, registry_version: str | None) -> tuple[Any, str]:
        if version not in cache:
            try:
                model = load(version, registry_version)
                cache[version] = (make(model), "")
            except Exception as exc:
                cache[version] = (None, f"model {version} cannot be used: {str(exc).splitlines()[0][:160]}")
        return cache[version]

    return get
