"""The generate stage: the synthetic CRM export (``generate.*``, ``seed``) -> ``paths.raw`` and the
ground truth -> ``paths.ground_truth``."""

from __future__ import annotations

from pathlib import Path

from pipeline.config import Settings
from pipeline.data.generate import generate, write_export


def run(settings: Settings) -> dict[str, Path]:
    export = generate(params=settings.generate, seed=settings.seed)
    return write_export(export, raw_dir=settings.paths.raw, truth_dir=settings.paths.ground_truth)
