"""Scoring rows of the feature matrix: probability, score 0-100, grade, the top reasons for and
against (exact SHAP, checked for additivity), what would raise the score, the qualification
checklist and the next step. One output row per input row, in the same order.

The probability is calibrated; the reasons explain the model's raw log-odds. The DVC stage, the
streaming batch and the Dask workers all score through :class:`Scorer`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyarrow as pa

from pipeline.config import HistoryParams, ScoreParams
from pipeline.contracts.features import FRAMEWORK_POINTS, FRAMEWORK_PREFIX, FeatureSpec, reason_column
from pipeline.errors import DataError, ModelError
from pipeline.explain.reasons import (
    Groups,
    Ranked,
    Template,
    Wording,
    default_activity_nouns,
    default_templates,
    load_activity_nouns,
    load_templates,
    rank_reasons,
)
from pipeline.explain.shap import Explainer
from pipeline.modeling.drift import DriftCounter
from pipeline.modeling.grades import grade, score_points
from pipeline.modeling.model import LoadedModel
from pipeline.scoring.change import CHANGE_COLUMNS, Explained, OldExplainer, changes
from pipeline.scoring.checklist import checklist, checklist_json
from pipeline.scoring.history import Previous, history_table
from pipeline.scoring.raising import TOP, what_would_raise
from pipeline.scoring.routing import next_steps

INT_CHANGE_COLUMNS = ("previous_score", "score_change")
# The JSON detail columns: in the Parquet output (for the lead board and `leadscore explain`), not the CSV.
DETAIL_COLUMNS = ["reasons_for", "reasons_against", "what_would_raise_detail", "checklist", "change_detail"]


@dataclass
class Tracking:
    """A run that keeps the score history: the leads' previous runs to describe each change against,
    the previous models (for a change of model), and the history rows collected chunk by chunk."""

    previous: Previous
    old: OldExplainer
    params: HistoryParams
    model_name: str
    job: str                                   # stage or export
    tables: list[pa.Table] = field(default_factory=list)
    worst_residual: float = 0.0


@dataclass
class Scorer:
    """One model scoring with one set of params; what it builds once (the SHAP kernel's tables, the
    feature groups, the wording templates) serves every chunk."""

    model: LoadedModel
    params: ScoreParams
    grade_bands: list[float]
    status: str                   # the model_status column: champion, unpromoted, file or registry
    explainer: Explainer = field(init=False)

    def __post_init__(self) -> None:
        self.explainer = Explainer(self.model.booster, route=self.params.shap)

    @cached_property
    def groups(self) -> Groups:
        return Groups.of(self.model.specs)

    @cached_property
    def drift_reference(self) -> dict[str, Any]:
        """The training distributions the drift counts of every chunk are taken against."""
        return self.model.meta.drift_reference.model_dump(mode="json")

    @cached_property
    def templates(self) -> tuple[Template, ...]:
        return tuple(load_templates(self.params.templates)) if self.params.templates else default_templates()

    @cached_property
    def nouns(self) -> dict[str, tuple[str, str]]:
        """Per activity type, the words "what would raise it" counts it in."""
        return load_activity_nouns(self.params.templates) if self.params.templates else default_activity_nouns()

    def input_columns(self) -> list[str]:
        """What scoring reads from a feature-matrix file: keys, the model's features, framework reasons."""
        names = [s.name for s in self.model.specs]
        reasons = [reason_column(n) for n in names if n.startswith(FRAMEWORK_PREFIX)]
        return list(dict.fromkeys(["record_id", "as_of", FRAMEWORK_POINTS, *names, *reasons]))

    def check_input_columns(self, header: list[str], path: Path) -> None:
        """Fail fast, naming them, if the file lacks the id or a feature the model needs."""
        missing = [c for c in ["record_id", *(s.name for s in self.model.specs)] if c not in header]
        if missing:
            shown = ", ".join(missing[:12]) + (f" and {len(missing) - 12} more" if len(missing) > 12 else "")
            raise DataError(f"{path} lacks column(s) the model {self.model.version} needs: {shown}. Score a feature "
                            "matrix built by `leadscore features` with the params the model was trained with")

    def _probability(self, x: pd.DataFrame) -> np.ndarray:
        """The calibrated probability of each row of the model matrix ``x``."""
        if not len(x):
            return np.zeros(0)
        return self.model.calibration.apply(np.asarray(self.model.booster.predict(x), dtype=float))

    def explained(self, rows: pd.DataFrame) -> Explained:
        """This model's scores and exact group contributions for ``rows`` (a previous model, explaining
        today's rows for a change of model)."""
        missing = [s.name for s in self.model.specs if s.name not in rows.columns]
        if missing:
            raise ModelError(f"model {self.model.version} needs feature(s) today's matrix lacks: "
                             f"{', '.join(missing[:5])}")
        x = self.model.matrix(rows)
        probability = self._probability(x)
        phi, base = self.explainer.explain(x)
        return Explained.of(x, phi, base, score_points(probability), self.groups,
                            Wording(self.model.specs, self.templates))

    def score(self, rows: pd.DataFrame, *, scored_at: str, detail: bool, track: Tracking | None = None
              ) -> pd.DataFrame:
        """Scores for ``rows`` (feature-matrix rows). ``detail`` adds the JSON columns (reasons, what
        would raise it, checklist, the change) for Parquet. With ``params.explain`` off, the reason and
        what-would-raise columns stay empty (and SHAP is skipped). ``track`` adds the change since each
        lead's previous run and collects the run's history rows."""
        model, params, groups = self.model, self.params, self.groups
        x = model.matrix(rows)
        probability = self._probability(x)
        score = score_points(probability)
        phi = base = None
        if params.explain:
            phi, base = self.explainer.explain(x)
            reasons_for, reasons_against = rank_reasons(x, phi, model.specs, k=params.top_reasons,
                                                        min_contribution=params.min_contribution,
                                                        templates=self.templates, groups=groups)
            raise_text, raise_detail = what_would_raise(model, x, phi, score, top=TOP,
                                                        min_points=params.raise_min_points, groups=groups,
                                                        nouns=self.nouns)
        else:  # scores only: no SHAP, no reasons, nothing to re-score
            reasons_for = reasons_against = Ranked.empty(len(x), params.top_reasons)
            raise_text, raise_detail = np.full(len(x), "", dtype=object), np.full(len(x), "[]", dtype=object)
        checks = checklist(rows, model.specs)
        points = pd.to_numeric(rows[FRAMEWORK_POINTS], errors="coerce").to_numpy(dtype=float) \
            if FRAMEWORK_POINTS in rows else np.full(len(rows), np.nan)
        step, rule = next_steps(score, points, len(checks), params.routing)
        out = {
            "record_id": rows["record_id"].to_numpy(),
            "probability": np.round(probability, 6),
            "score": score,
            "grade": grade(score, self.grade_bands),
            "next_step": step,
            "next_step_rule": rule,
        }
        for i in range(params.top_reasons):
            out[f"reason_for_{i + 1}"] = reasons_for.text[:, i]
        for i in range(params.top_reasons):
            out[f"reason_against_{i + 1}"] = reasons_against.text[:, i]
        out["what_would_raise"] = raise_text
        for key, _, status, why in checks:
            out[f"{key}_status"] = status
            out[f"{key}_reason"] = np.where(pd.isna(why), "", why)
        frame = pd.DataFrame(out, index=pd.RangeIndex(len(rows)))
        as_of = pd.to_datetime(rows["as_of"], errors="coerce") if "as_of" in rows else \
            pd.Series(pd.NaT, index=rows.index, dtype="datetime64[us]")
        frame["as_of"] = as_of.dt.strftime("%Y-%m-%d").fillna("").to_numpy(dtype=object)
        frame["model_version"] = model.version
        frame["registry_version"] = pd.Series(model.registry_version, index=frame.index, dtype="str")
        frame["model_status"] = self.status
        frame["scored_at"] = scored_at
        change_detail = self._track(track, rows, x, frame, phi, base, score, detail=detail) \
            if track is not None else None
        if change_detail is None:
            for column in CHANGE_COLUMNS:
                frame[column] = pd.array([pd.NA] * len(frame), dtype="Int64") if column in INT_CHANGE_COLUMNS \
                    else "new" if column == "trend" else ""
            change_detail = np.full(len(frame), "", dtype=object)
        if detail:
            frame["reasons_for"] = reasons_for.json(groups.titles)
            frame["reasons_against"] = reasons_against.json(groups.titles)
            frame["what_would_raise_detail"] = raise_detail
            frame["checklist"] = checklist_json(checks, len(rows))
            frame["change_detail"] = change_detail
        return frame

    def _track(self, track: Tracking, rows: pd.DataFrame, x: pd.DataFrame, frame: pd.DataFrame,
               phi: np.ndarray | None, base: np.ndarray | None, score: np.ndarray, *, detail: bool) -> np.ndarray:
        """The change columns of ``frame`` (in place) and the run's history rows; the JSON detail."""
        groups = self.groups
        causes = phi is not None and base is not None
        if phi is None or base is None:  # score.explain off: the change is known, not its causes
            phi, base = np.zeros((len(x), len(self.model.specs))), np.full(len(x), np.nan)
        now = Explained.of(x, phi, base, score, groups, Wording(self.model.specs, self.templates))
        found = changes(now, rows, model_version=self.model.version, previous=track.previous, old=track.old,
                        params=track.params, top=self.params.top_reasons, causes=causes, detail=detail)
        for column in CHANGE_COLUMNS:
            frame[column] = found.columns[column].to_numpy() if column not in INT_CHANGE_COLUMNS \
                else found.columns[column].array
        track.worst_residual = max(track.worst_residual, found.worst_residual)
        rows_out = frame[["scored_at", "record_id", "model_version", "registry_version", "model_status", "probability",
                          "score", "grade", "next_step", *CHANGE_COLUMNS]].assign(
            model_name=track.model_name, job=track.job, raw_score=now.raw, base_value=now.base)
        track.tables.append(history_table(rows_out, sources=groups.sources, contributions=now.contributions))
        return found.detail

    def score_chunk(self, chunk: pd.DataFrame, *, scored_at: str, detail: bool, track: Tracking | None = None
                    ) -> tuple[pd.DataFrame, pd.DataFrame, DriftCounter]:
        """One chunk of a batch: its scores, its quarantined rows (``row`` counts from 1 within it)
        and its drift counts."""
        good, quarantined = quarantine_rows(chunk, self.model.specs)
        scores = self.score(good, scored_at=scored_at, detail=detail, track=track)
        counter = DriftCounter(self.drift_reference)
        counter.add(good, scores["score"].to_numpy())
        return scores, quarantined, counter


def quarantine_rows(chunk: pd.DataFrame, specs: list[FeatureSpec]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Split off rows that cannot be scored, each with its reason: no record id, or text in a
    numeric feature (a number that would otherwise silently become "missing"). ``row`` numbers
    them from 1 within ``chunk``."""
    reason = pd.Series("", index=chunk.index, dtype=object)
    ids = chunk["record_id"]
    reason[ids.isna() | (ids.astype(str).str.strip() == "")] = "missing record_id"
    for spec in specs:
        column = chunk[spec.name]
        if spec.kind != "numeric" or pd.api.types.is_numeric_dtype(column.dtype):
            continue
        text = column.astype(object).where(column.notna(), None)
        parsed = pd.to_numeric(text, errors="coerce")
        bad = parsed.isna() & text.notna() & (text.astype(str).str.strip() != "") & (reason == "")
        if bad.any():
            reason[bad] = [f"{spec.name}: {str(v)[:60]!r} is not a number" for v in text[bad]]
    bad_rows = (reason != "").to_numpy()
    if not bad_rows.any():
        return chunk, pd.DataFrame(columns=["row", "record_id", "reason"])
    quarantined = pd.DataFrame({"row": np.nonzero(bad_rows)[0] + 1,
                                "record_id": ids[bad_rows].astype(object).to_numpy(),
                                "reason": reason[bad_rows].to_numpy()})
    return chunk[~bad_rows], quarantined
