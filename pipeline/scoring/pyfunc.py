"""The registered MLflow model: a pyfunc that scores feature-matrix rows through the same
:class:`~pipeline.scoring.scorer.Scorer` as ``leadscore score``, so ``mlflow.pyfunc.load_model
("models:/<name>@champion").predict(rows)`` and ``mlflow models serve`` return the calibrated
probability, score, grade, reasons and next step that ``scores.csv`` holds for the same rows.

Nothing is pickled. It is an MLflow "model from code": MLflow keeps the small file
``mlflow_model.py`` (which builds :class:`LeadscorePyfunc`) and the artifacts ``model.txt``,
``model_meta.json`` and ``scoring.json`` (the score and grade params of its training run). Loading
it needs leadscore installed (``pip install -e .``), like any custom pyfunc needs its code.
"""

from __future__ import annotations

import shutil
import warnings
from datetime import UTC, datetime
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd
from mlflow.pyfunc import PythonModel

from pipeline.config import GradesParams, ScoreParams
from pipeline.contracts.features import FRAMEWORK_POINTS
from pipeline.contracts.files import MODEL_FILE, MODEL_META_FILE
from pipeline.contracts.model import ServedModel
from pipeline.errors import DataError, ModelError
from pipeline.io.files import read_json, write_json
from pipeline.modeling.model import load_model
from pipeline.scoring.scorer import Scorer, quarantine_rows

CODE_FILE = Path(__file__).with_name("mlflow_model.py")
SCORING_FILE = "scoring.json"
BUNDLE_ARTIFACT = "bundle"   # the artifact folder: model.txt, model_meta.json, scoring.json (and templates)
STATUS = "mlflow"            # what this model's rows would say in model_status, were it kept
# Not in the pyfunc's output: where and when a batch ran, which the served model cannot know.
BATCH_COLUMNS = ("model_status", "registry_version", "scored_at")
REQUIREMENTS = ("lightgbm", "pandas", "numpy", "pyarrow", "pydantic", "pyyaml", "scikit-learn", "mlflow")


def package(models_dir: Path, *, score: ScoreParams, grades: GradesParams, example: pd.DataFrame,
            workdir: Path) -> ServedModel:
    """The pyfunc of the model in ``models_dir``, its files gathered in ``workdir``; ``example``
    (a few feature-matrix rows) fixes the output schema."""
    bundle = workdir / BUNDLE_ARTIFACT
    bundle.mkdir(parents=True, exist_ok=True)
    for name in (MODEL_FILE, MODEL_META_FILE):
        shutil.copy2(models_dir / name, bundle / name)
    templates = None
    if score.templates is not None:
        templates = score.templates.name
        shutil.copy2(score.templates, bundle / templates)
    model = load_model(bundle)
    write_json(bundle / SCORING_FILE, {
        "bundle_sha256": model.bundle_sha256,
        "score": score.model_dump(mode="json") | {"templates": templates, "explain": True},
        "grade_bands": list(grades.bands),
    })
    scorer = _scorer(bundle)
    output = predict_rows(scorer, example.head(5).reset_index(drop=True))
    return ServedModel(code=CODE_FILE, artifacts={BUNDLE_ARTIFACT: str(bundle)},
                       signature=signature(scorer, output), pip_requirements=requirements())


def _scorer(bundle: Path) -> Scorer:
    config = read_json(bundle / SCORING_FILE)
    model = load_model(bundle)
    if model.bundle_sha256 != config["bundle_sha256"]:
        raise ModelError(f"{bundle}: model.txt and model_meta.json are not those this MLflow model was logged with")
    params = dict(config["score"])
    if params.get("templates"):
        params["templates"] = bundle / params["templates"]
    return Scorer(model, ScoreParams(**params), list(config["grade_bands"]), STATUS)


def predict_rows(scorer: Scorer, rows: pd.DataFrame) -> pd.DataFrame:
    """One output row per input row, in order; a row that cannot be scored is an error naming it
    (a served model answers for every row it is given, or for none)."""
    frame = rows.reset_index(drop=True)
    missing = [c for c in ["record_id", *(s.name for s in scorer.model.specs)] if c not in frame.columns]
    if missing:
        raise DataError(f"the rows lack column(s) the model {scorer.model.version} needs: {', '.join(missing)}")
    good, bad = quarantine_rows(frame, scorer.model.specs)
    if len(bad):
        first = bad.iloc[0]
        raise DataError(f"{len(bad)} row(s) cannot be scored, e.g. row {int(first['row'])}: {first['reason']}")
    scored = scorer.score(good, scored_at=datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), detail=False)
    return scored.drop(columns=list(BATCH_COLUMNS))


def signature(scorer: Scorer, output: pd.DataFrame) -> Any:
    """Inputs: what scoring reads (the record id and every feature, required: numbers as doubles,
    categories as strings, null where unknown; the as-of date and the framework's points and
    reasons, optional); outputs: the score columns."""
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema, TensorSpec

    kinds = {s.name: s.kind for s in scorer.model.specs}
    inputs: list[ColSpec | TensorSpec] = []
    for name in scorer.input_columns():
        if name == "as_of":
            inputs.append(ColSpec("datetime", name, required=False))
        elif name == "record_id":
            inputs.append(ColSpec("string", name))
        elif name in kinds:  # a feature: present in every row, null where unknown
            inputs.append(ColSpec("double" if kinds[name] == "numeric" else "string", name))
        else:
            inputs.append(ColSpec("double" if name == FRAMEWORK_POINTS else "string", name, required=False))
    outputs: list[ColSpec | TensorSpec] = [
        ColSpec("long" if pd.api.types.is_integer_dtype(dtype) else
                "double" if pd.api.types.is_float_dtype(dtype) else "string", str(name))
        for name, dtype in output.dtypes.items()]
    return ModelSignature(inputs=Schema(inputs), outputs=Schema(outputs))


def requirements() -> list[str]:
    """The installed versions of what the pyfunc imports (leadscore itself is installed from its checkout)."""
    found = []
    for name in REQUIREMENTS:
        try:
            found.append(f"{name}=={metadata.version(name)}")
        except metadata.PackageNotFoundError:
            continue
    return found


# MLflow suggests type hints on predict when the class is made; the signature (each input column
# named and typed) is the check here, so the suggestion is silenced for this class only.
with warnings.catch_warnings():
    warnings.filterwarnings("ignore", message="Add type hints to the `predict` method", category=UserWarning)

    class LeadscorePyfunc(PythonModel):
        """The pyfunc: :mod:`pipeline.scoring.mlflow_model` hands one to MLflow."""

        scorer: Scorer

        def load_context(self, context: Any) -> None:
            self.scorer = _scorer(Path(context.artifacts[BUNDLE_ARTIFACT]))

        # No type hints: MLflow would validate inputs against them instead of the signature.
        def predict(self, context, model_input, params=None):  # type: ignore[no-untyped-def]
            from mlflow.exceptions import MlflowException
            from mlflow.protos.databricks_pb2 import INVALID_PARAMETER_VALUE

            rows = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
            try:
                return predict_rows(self.scorer, rows)
            except DataError as exc:  # the caller's rows: a 400 that says why, not a stack trace
                raise MlflowException(str(exc), error_code=INVALID_PARAMETER_VALUE) from exc
