"""What the features stage reads: the interim files ingest wrote (the records, the activity log,
the event -> account map, the declared fields)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from pipeline.contracts.fields import FieldInfo
from pipeline.contracts.files import (
    CLOCK_FILE,
    EVENT_ACCOUNTS_FILE,
    EVENTS_FILE,
    FIELDS_FILE,
    MAPPING_FILE,
    RECORDS_FILE,
)
from pipeline.errors import DataError
from pipeline.features.dask import DaskEvents
from pipeline.features.events import Dictionary, PendingEventLog
from pipeline.io.files import read_json


@dataclass(frozen=True)
class Interim:
    """What ingest wrote: the records, the activity log and the event -> account map (each if the
    export has them), and the declared fields."""

    records: pd.DataFrame
    events: PendingEventLog | DaskEvents | None  # read on a thread of its own (or left to a Dask cluster)
    fields: list[FieldInfo]
    event_accounts: pd.DataFrame | None
    mapping: dict[str, Any] | None = None  # the explicit source: mapping ingest read the export with
    clock: dict[str, Any] | None = None    # the export's date and the rule that gave it (None: no dates)


def read_interim(interim_dir: Path, *, events_on: Callable[[Path], DaskEvents] | None = None) -> Interim:
    """The interim files. The activity log (the largest by far) is read on a thread of its own while
    the records are read and their own features built: pyarrow decodes without holding the GIL.
    With ``events_on`` (e.g. a :class:`DaskEvents` maker), the log is left to it instead."""
    records_path, fields_path = interim_dir / RECORDS_FILE, interim_dir / FIELDS_FILE
    for path in (records_path, fields_path):
        if not path.exists():
            raise DataError(f"missing {path}; run `leadscore ingest` first")
    fields = [FieldInfo(**f) for f in read_json(fields_path)]
    events_path, accounts_path = interim_dir / EVENTS_FILE, interim_dir / EVENT_ACCOUNTS_FILE
    events = (events_on or PendingEventLog)(events_path) if events_path.exists() else None
    records = _read_table(records_path)
    event_accounts = _read_table(accounts_path) if accounts_path.exists() else None
    mapping_path = interim_dir / MAPPING_FILE
    mapping = read_json(mapping_path) if mapping_path.exists() else None
    clock_path = interim_dir / CLOCK_FILE
    clock = read_json(clock_path) if clock_path.exists() else None
    return Interim(records, events, fields, event_accounts, mapping, clock)


def _read_table(path: Path) -> pd.DataFrame:
    """An interim Parquet file as a frame. Key columns are text dictionaries of up to millions of
    values; pandas' own conversion of those took ~0.8 s per column at 1M leads (it merges the
    dictionary of every batch), built here from the codes and one dictionary in ~0.1 s (the cost
    left: pandas checking that the categories are distinct)."""
    try:
        table = pq.read_table(path)
    except (OSError, pa.ArrowException) as exc:
        raise DataError(f"{path}: cannot be read ({exc}); run `leadscore ingest` again") from None
    coded = [f.name for f in table.schema if pa.types.is_dictionary(f.type)
             and (pa.types.is_string(f.type.value_type) or pa.types.is_large_string(f.type.value_type))]
    frame = table.drop_columns(coded).to_pandas()
    for name in coded:
        dictionary = Dictionary()
        codes = dictionary.chunked_codes(table.column(name))
        categories = pd.Index(pd.array(dictionary.values(), dtype="str"))
        frame[name] = pd.Categorical.from_codes(codes, dtype=pd.CategoricalDtype(categories))
    return frame[table.column_names]
