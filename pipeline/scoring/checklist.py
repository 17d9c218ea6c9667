"""The qualification framework's checklist per lead: each criterion's status and its reason with the value."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from pipeline.contracts.features import FRAMEWORK_PREFIX, REASON_SUFFIX, FeatureSpec, reason_column
from pipeline.explain.text import join_strings, json_arrays, json_strings

Column = tuple[str, str, np.ndarray, np.ndarray]  # criterion key, label, status per lead, reason per lead


def checklist(rows: pd.DataFrame, specs: list[FeatureSpec]) -> list[Column]:
    """The framework's criteria, column-wise: key, label, each lead's status and the one-line reason
    with the value (None where there is none). A criterion the leakage guard dropped from the model
    stays on the checklist: reps still qualify by it."""
    criteria = [(s.name, s.label.split(": ", 1)[-1]) for s in specs if s.name.startswith(FRAMEWORK_PREFIX)]
    known = {name for name, _ in criteria}
    criteria += [(c, c[len(FRAMEWORK_PREFIX):].replace("_", " ").capitalize()) for c in rows.columns
                 if c.startswith(FRAMEWORK_PREFIX) and not c.endswith(REASON_SUFFIX) and c not in known]
    columns = []
    for name, label in criteria:
        if name not in rows.columns:
            continue
        reason = rows.get(reason_column(name))
        status = rows[name].astype(str).to_numpy(dtype=object)
        why = np.full(len(rows), None, dtype=object) if reason is None else \
            reason.astype(object).where(reason.notna(), None).to_numpy(dtype=object)
        columns.append((name[len(FRAMEWORK_PREFIX):], label, status, why))
    return columns


def checklist_json(columns: list[Column], n: int) -> np.ndarray:
    """Per lead, the checklist as a JSON array of {criterion, label, status, reason}."""
    parts = [(np.ones(n, dtype=bool),
              join_strings(f'{{"criterion": {json.dumps(key)}, "label": {json.dumps(label)}, "status": ',
                           json_strings(status), ', "reason": ', json_strings(why), "}"))
             for key, label, status, why in columns]
    return json_arrays(parts, n)
