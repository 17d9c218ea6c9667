"""What would raise a lead's score: activities a rep can cause (a demo request, a pricing-page visit,
a webinar), as many as it takes to match a typical won deal, and the lead re-scored with them.

A move adds ``k`` events of an activity now: each of its counts (7/30/90 days ...) and its trend go
up by ``k``, its "days since" becomes 0, and so do the features derived from all activity (days since
the last activity, the engagement score, the account's roll-ups). ``k`` is what the lead lacks against
a typical won deal in the activity's largest shortfall. Never a derived score ("engagement score
6.14") nor a firmographic: a rep can do neither. Per lead, the ``CANDIDATES`` activities that weigh
most against it are tried one by one, and those that help together; a move is listed only when it
raises the score by at least ``min_points``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np
import pandas as pd

from pipeline.explain.reasons import ACTIVITY_PREFIX, Groups
from pipeline.explain.text import counted, join_strings, joined, json_arrays, json_strings
from pipeline.modeling.grades import score_points
from pipeline.modeling.model import LoadedModel

TOP = 2          # moves proposed per lead
CANDIDATES = 3   # activities tried per lead
# Features of all activity together, moved by any new event.
LAST_ACTIVITY, ENGAGEMENT, ACCOUNT_EVENTS, ACCOUNT_ENGAGEMENT = (
    "days_since_last_event", "engagement_score", "acct_events_", "acct_engagement_score")


def score_of(model: LoadedModel, x: pd.DataFrame) -> np.ndarray:
    """Scores 0-100 of model-matrix rows: calibrated probability x 100, rounded."""
    return score_points(model.calibration.apply(np.asarray(model.booster.predict(x), dtype=float)))


@dataclass(frozen=True)
class Activity:
    """One activity type's own features in the model."""

    event: str                 # pricing_page_view
    group: int                 # its feature group
    counts: list[str]          # evt_<event>_<w>d
    trend: str | None
    days_since: str | None
    weight: float              # its weight in the engagement score


def activities(model: LoadedModel, groups: Groups) -> list[Activity]:
    """The activity groups of the model that a typical won deal has counts for."""
    typical = model.meta.typical_won
    recipe = model.meta.recipe or {}
    weights = (recipe.get("features") or {}).get("event_weights") or {}
    out = []
    for g, members in enumerate(groups.members):
        if not groups.actionable[g]:
            continue
        names = [model.specs[j].name for j in members]
        event = model.specs[members[0]].source
        prefix = f"{ACTIVITY_PREFIX}{event}_"
        counts = [n for n in names if n.endswith("d") and n[len(prefix):-1].isdigit() and typical.get(n) is not None]
        if not counts:
            continue
        out.append(Activity(event=event, group=g, counts=counts,
                            trend=next((n for n in names if n == f"{prefix}trend"), None),
                            days_since=next((n for n in names if n == f"{prefix}days_since"), None),
                            weight=float(weights.get(event, 1.0))))
    return out


def with_events(x: pd.DataFrame, moves: list[tuple[Activity, np.ndarray]]) -> pd.DataFrame:
    """``x`` (model-matrix rows; not changed) with ``k`` new events of each activity now (``moves``:
    the activity and ``k`` per row)."""
    out = x.copy()
    total = np.zeros(len(x))
    weighted = np.zeros(len(x))
    for activity, k in moves:
        k = np.asarray(k, dtype=float)
        for name in activity.counts:
            out[name] = np.nan_to_num(out[name].to_numpy(dtype=float)) + k
        if activity.trend is not None:
            out[activity.trend] = np.nan_to_num(out[activity.trend].to_numpy(dtype=float)) + k
        if activity.days_since is not None:
            out[activity.days_since] = np.where(k > 0, 0.0, out[activity.days_since].to_numpy(dtype=float))
        total += k
        weighted += k * activity.weight
    for name in out.columns:
        if name == LAST_ACTIVITY:
            out[name] = np.where(total > 0, 0.0, out[name].to_numpy(dtype=float))
        elif name in (ENGAGEMENT, ACCOUNT_ENGAGEMENT):
            out[name] = np.nan_to_num(out[name].to_numpy(dtype=float)) + weighted
        elif name.startswith(ACCOUNT_EVENTS):
            out[name] = np.nan_to_num(out[name].to_numpy(dtype=float)) + total
    return out


def shortfall(x: pd.DataFrame, activity: Activity, typical: Mapping[str, float | str | None]) -> np.ndarray:
    """Per row, the events of ``activity`` it lacks against a typical won deal (its largest shortfall
    over the windows, rounded up; 0 when it has as many)."""
    need = np.zeros(len(x))
    for name in activity.counts:
        have = np.nan_to_num(x[name].to_numpy(dtype=float))
        need = np.maximum(need, float(typical[name]) - have)  # type: ignore[arg-type]  # activities(): not None
    return np.ceil(np.round(need, 9)).astype(np.int64)


def what_would_raise(model: LoadedModel, x: pd.DataFrame, phi: np.ndarray, before: np.ndarray, *, top: int,
                     min_points: int, groups: Groups, nouns: dict[str, tuple[str, str]]
                     ) -> tuple[np.ndarray, np.ndarray]:
    """Per lead, up to ``top`` moves that raise its score by ``min_points`` or more (``before``: the
    scores as they are), biggest rise first: the best single activity, and the activities that help
    together when they add ``min_points`` more. Returns the "; "-joined texts and the JSON detail per
    lead. ``nouns``: per activity, its singular and plural ("demo request", "demo requests")."""
    n = len(x)
    acts = activities(model, groups) if n else []
    if not acts:
        return np.full(n, "", dtype=object), np.full(n, "[]", dtype=object)
    typical = model.meta.typical_won
    need = np.column_stack([shortfall(x, a, typical) for a in acts])
    weighs = groups.sum(phi)[:, [a.group for a in acts]]
    key = np.where(need >= 1, weighs, np.inf)  # what weighs most against the lead first
    picks = np.argsort(key, axis=1, kind="stable")[:, :CANDIDATES]
    rows = np.arange(n)
    valid = np.isfinite(key[rows[:, None], picks])
    after = np.full(picks.shape, -1, dtype=np.int64)
    for a in pd.unique(picks[valid].ravel()):
        at_row, at_slot = np.nonzero(valid & (picks == a))
        after[at_row, at_slot] = score_of(model, with_events(x.iloc[at_row], [(acts[a], need[at_row, a])]))
    helps = valid & (after > before[:, None])
    # Together: every candidate that helps alone, for the leads with two or more of them.
    mask = np.zeros(n, dtype=np.int64)
    for s in range(picks.shape[1]):
        mask |= np.where(helps[:, s], 1 << picks[:, s], 0)
    together = np.full(n, -1, dtype=np.int64)
    several = helps.sum(axis=1) >= 2
    for m in np.unique(mask[several]):
        at = np.flatnonzero(several & (mask == m))
        members = [a for a in range(len(acts)) if m >> a & 1]
        together[at] = score_of(model, with_events(x.iloc[at], [(acts[a], need[at, a]) for a in members]))
    rise = np.where(helps, after - before[:, None], -1)
    best = np.argmax(rise, axis=1)  # the first of equals: the candidate weighing most against the lead
    best_after = after[rows, best]
    single_ok = rise[rows, best] >= min_points
    together_ok = several & (together - before >= min_points) & \
        (~single_ok | (together - best_after >= min_points))
    titles = np.asarray(groups.titles, dtype=object)

    def words(members: list[int], at: np.ndarray) -> list[str]:
        texts = []
        for i in at:
            items = [counted(int(need[i, a]), *nouns.get(acts[a].event, _nouns(acts[a].event))) for a in members]
            text = joined(items)
            texts.append(text[:1].upper() + text[1:])
        return texts

    single_text = np.full(n, "", dtype=object)
    single_group = np.full(n, "", dtype=object)
    for s in range(picks.shape[1]):
        at = np.flatnonzero(single_ok & (best == s))
        for a in np.unique(picks[at, s]):
            here = at[picks[at, s] == a]
            single_text[here] = words([int(a)], here)
            single_group[here] = titles[acts[a].group]
    together_text = np.full(n, "", dtype=object)
    together_group = np.full(n, "", dtype=object)
    for m in np.unique(mask[together_ok]):
        here = np.flatnonzero(together_ok & (mask == m))
        # in the lead's own order: what weighs most against it first
        for i in here:
            members = [int(a) for a, ok in zip(picks[i], helps[i], strict=True) if ok]
            together_text[i] = words(members, np.array([i]))[0]
            together_group[i] = " and ".join(titles[acts[a].group] for a in members)
    # Biggest rise first: together (when listed, it adds min_points to the best single), then alone.
    slots = [(np.where(together_ok, together_text, single_text), np.where(together_ok, together_group, single_group),
              np.where(together_ok, together, best_after), together_ok | single_ok),
             (single_text, single_group, best_after, together_ok & single_ok)][:top]
    before_text = before.astype(str).astype(object)
    flat, parts = np.full(n, "", dtype=object), []
    for action, group, to, present in slots:
        to_text = to.astype(str).astype(object)
        line = join_strings(action, ", as in a typical won deal, would raise the score from ", before_text, " to ",
                            to_text)
        flat = np.where(present, np.where(flat == "", line, flat + "; " + line), flat)
        parts.append((present, join_strings('{"text": ', json_strings(line), ', "group": ', json_strings(group),
                                            ', "from": ', before_text, ', "to": ', to_text, "}")))
    return flat, json_arrays(parts, n)


def _nouns(event: str) -> tuple[str, str]:
    """An activity's singular and plural from its name: "webinar_attended" -> ("webinar attended",
    "webinars attended")."""
    one = event.replace("_", " ")
    words = one.split()
    if len(words) > 1 and words[-1].endswith("ed"):
        return one, " ".join([words[0] + "s", *words[1:]])
    return one, one + ("es" if one.endswith(("s", "sh", "ch")) else "s")
