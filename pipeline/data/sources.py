"""The ``source:`` mapping made explicit: kind synthetic is the generator's own relational export,
read through its built-in mapping (``synthetic.yaml``, an ordinary mapping and a good template)."""

from __future__ import annotations

from pathlib import Path

import yaml

from pipeline.config import SourceParams

SYNTHETIC_MAPPING = Path(__file__).with_name("synthetic.yaml")


def explicit_mapping(source: SourceParams) -> SourceParams:
    """``source`` itself, or for kind synthetic the built-in mapping of the generator's export in ``source.dir``."""
    if source.kind != "synthetic":
        return source
    raw = yaml.safe_load(SYNTHETIC_MAPPING.read_text(encoding="utf-8"))
    if source.display.fields or source.display.link:  # the user's own display columns replace the built-in ones
        raw["display"] = source.display.model_dump(mode="json")
    raw["clock"] = source.clock.model_dump(mode="json")  # the user's rule for the export's date holds for it too
    return SourceParams.model_validate({**raw, "dir": source.dir})
