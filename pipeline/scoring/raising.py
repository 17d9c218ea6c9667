"""What would raise a lead's score: its most negative actionable factors set to a value typical of
won deals, and the lead re-scored with each."""

from __future__ import annotations

import numpy as np
import pandas as pd

from pipeline.explain.reasons import Groups, Template, lead_features, word
from pipeline.explain.text import join_strings, json_arrays, json_strings
from pipeline.modeling.grades import score_points
from pipeline.modeling.model import LoadedModel

TOP = 2  # factors proposed per lead


def score_of(model: LoadedModel, x: pd.DataFrame) -> np.ndarray:
    """Scores 0-100 of model-matrix rows: calibrated probability x 100, rounded."""
    return score_points(model.calibration.apply(np.asarray(model.booster.predict(x), dtype=float)))


def what_would_raise(model: LoadedModel, x: pd.DataFrame, phi: np.ndarray, before: np.ndarray, *, top: int,
                     min_contribution: float, templates: tuple[Template, ...] | list[Template],
                     groups: Groups) -> tuple[np.ndarray, np.ndarray]:
    """Per lead, for its ``top`` most negative actionable factors (intent and qualification, never
    firmographics): the score it gets when that factor is set to a value typical of won deals, by
    re-scoring the modified lead (``before``: the leads' scores as they are). Listed only when the
    score would rise, biggest rise first. Returns the "; "-joined texts and the JSON detail per lead."""
    n = len(x)
    typical = model.meta.typical_won
    if not typical or not n:
        return np.full(n, "", dtype=object), np.full(n, "[]", dtype=object)
    contribution = groups.sum(phi)
    usable = np.array([all(typical.get(model.specs[j].name) is not None for j in m) for m in groups.members])
    negative = np.where(groups.actionable & usable & (contribution <= -min_contribution), contribution, np.inf)
    picks = np.argsort(negative, axis=1, kind="stable")[:, :top]
    rows = np.arange(n)
    valid = np.isfinite(negative[rows[:, None], picks])
    first_seen = pd.unique(picks[valid].ravel())
    after = np.full(picks.shape, -1, dtype=np.int64)
    text = np.full(picks.shape, "", dtype=object)
    lead = lead_features(phi, groups)
    for g in first_seen:
        at_row, at_slot = np.nonzero(valid & (picks == g))
        changed = x.iloc[at_row].copy()
        for j in groups.members[g]:
            spec = model.specs[j]
            if spec.kind == "categorical":
                changed[spec.name] = pd.Categorical([typical[spec.name]] * len(at_row),
                                                    categories=changed[spec.name].cat.categories)
            else:
                changed[spec.name] = float(typical[spec.name])  # type: ignore[arg-type]  # usable: not None
        after[at_row, at_slot] = score_of(model, changed)
        for j in np.unique(lead[at_row, g]):
            spec = model.specs[int(j)]
            like = word(spec, typical[spec.name], group=groups.titles[g], templates=templates)
            text[at_row[lead[at_row, g] == j], at_slot[lead[at_row, g] == j]] = like
    rises = valid & (after > before[:, None])
    # Biggest rise first; a tie keeps the lead's own order (most negative factor first), so a lead's
    # text never depends on which other leads share its batch.
    order = np.argsort(np.where(rises, -after, np.iinfo(np.int64).max), axis=1, kind="stable")
    picks, after, text, rises = (np.take_along_axis(a, order, axis=1) for a in (picks, after, text, rises))
    before_text = before.astype(str).astype(object)
    flat, parts = np.full(n, "", dtype=object), []
    titles = np.asarray(groups.titles, dtype=object)
    for s in range(picks.shape[1]):
        after_text = after[:, s].astype(str).astype(object)
        line = join_strings(text[:, s], " (as in a typical won deal) would raise the score from ", before_text,
                            " to ", after_text)
        flat = np.where(rises[:, s], np.where(flat == "", line, flat + "; " + line), flat)
        parts.append((rises[:, s], join_strings('{"text": ', json_strings(line), ', "group": ',
                                                json_strings(titles[picks[:, s]]), ', "from": ', before_text,
                                                ', "to": ', after_text, "}")))
    return flat, json_arrays(parts, n)
