"""The next step for a scored lead, the MQL -> SQL hand-off: sales_ready, nurture or disqualify."""

from __future__ import annotations

import numpy as np

from pipeline.config import RoutingParams

STEP_WORDS = {"sales_ready": "Sales-ready", "nurture": "Nurture", "disqualify": "Disqualify"}


def _met(met: int, n_criteria: int) -> str:
    return f"{met} of {n_criteria} qualification criteria {'is' if met == 1 else 'are'} met"


def rule_sentence(step: str, score: int, met: int, n_criteria: int, routing: RoutingParams) -> str:
    """The rule that sent a lead to ``step``, in a sentence: "Disqualify: the score is 3, below the
    nurture threshold of 10"."""
    ready_score, ready_met = routing.sales_ready_min_score, routing.sales_ready_min_criteria
    head = f"{STEP_WORDS[step]}: "
    if step == "sales_ready":
        return (head + f"the score is {score} ({ready_score} or more needed) and {_met(met, n_criteria)} "
                f"({ready_met} or more needed)")
    if step == "disqualify":
        return head + f"the score is {score}, below the nurture threshold of {routing.disqualify_below_score}"
    low_score, few = score < ready_score, met < ready_met
    if low_score and few:
        return (head + f"the score is {score}, below the sales-ready threshold of {ready_score}, and "
                f"{_met(met, n_criteria)}, fewer than the {ready_met} a sales-ready lead needs")
    if few:
        return (head + f"the score is {score}, high enough, but {_met(met, n_criteria)}, fewer than the "
                f"{ready_met} a sales-ready lead needs")
    return head + f"the score is {score}, below the sales-ready threshold of {ready_score}"


def next_steps(score: np.ndarray, points: np.ndarray, n_criteria: int,
               routing: RoutingParams) -> tuple[np.ndarray, np.ndarray]:
    """sales_ready (SQL), nurture (MQL) or disqualify per lead, and the rule that fired, in a sentence
    (worded once per distinct score and criteria count)."""
    score = np.asarray(score, dtype=np.int64)
    met = np.nan_to_num(np.asarray(points, dtype=float), nan=0.0).astype(np.int64)
    ready = (score >= routing.sales_ready_min_score) & (met >= routing.sales_ready_min_criteria)
    drop = ~ready & (score < routing.disqualify_below_score)
    step = np.where(ready, "sales_ready", np.where(drop, "disqualify", "nurture")).astype(object)
    if not len(score):
        return step, np.zeros(0, dtype=object)
    pairs, first, inverse = np.unique(np.column_stack([score, met]), axis=0, return_index=True, return_inverse=True)
    words = np.asarray([rule_sentence(str(step[i]), int(s), int(m), n_criteria, routing)
                        for (s, m), i in zip(pairs, first, strict=True)], dtype=object)
    return step, words[inverse.reshape(-1)]

def next_step(score: int, points: float, n_criteria: int, routing: RoutingParams) -> tuple[str, str]:
    """:func:`next_steps` for one lead."""
    step, rule = next_steps(np.array([score]), np.array([points]), n_criteria, routing)
    return str(step[0]), str(rule[0])
