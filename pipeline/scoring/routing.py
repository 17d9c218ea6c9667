"""The next step for a scored lead, the MQL -> SQL hand-off: sales_ready, nurture or disqualify."""

from __future__ import annotations

import numpy as np

from pipeline.config import RoutingParams
from pipeline.explain.text import join_strings


def next_steps(score: np.ndarray, points: np.ndarray, n_criteria: int,
               routing: RoutingParams) -> tuple[np.ndarray, np.ndarray]:
    """sales_ready (SQL), nurture (MQL) or disqualify per lead, and the rule that fired, in plain words."""
    score = np.asarray(score, dtype=np.int64)
    met = np.nan_to_num(np.asarray(points, dtype=float), nan=0.0).astype(np.int64)
    s, m = score.astype(str).astype(object), met.astype(str).astype(object)
    ready = (score >= routing.sales_ready_min_score) & (met >= routing.sales_ready_min_criteria)
    drop = ~ready & (score < routing.disqualify_below_score)
    step = np.where(ready, "sales_ready", np.where(drop, "disqualify", "nurture")).astype(object)
    rule = np.where(
        ready, join_strings("score ", s, f" >= {routing.sales_ready_min_score} and ", m,
                            f" of {n_criteria} qualification criteria met (>= {routing.sales_ready_min_criteria})"),
        np.where(drop, join_strings("score ", s, f" < {routing.disqualify_below_score}"),
                 join_strings(f"not sales-ready (needs score >= {routing.sales_ready_min_score} and "
                              f">= {routing.sales_ready_min_criteria} criteria met; has ", s, " and ", m,
                              f") and not below {routing.disqualify_below_score}")))
    return step, rule.astype(object)


def next_step(score: int, points: float, n_criteria: int, routing: RoutingParams) -> tuple[str, str]:
    """:func:`next_steps` for one lead."""
    step, rule = next_steps(np.array([score]), np.array([points]), n_criteria, routing)
    return str(step[0]), str(rule[0])
