"""The ingest stage: the export named by ``source`` -> ``paths.interim`` (validated tables, quarantine
with reasons) and the row counts -> ``paths.ingest_report``."""

from __future__ import annotations

import logging

from pipeline.config import Settings
from pipeline.contracts.files import QUARANTINE_FILE
from pipeline.data.ingest import IngestResult, ingest, write_result

log = logging.getLogger(__name__)


def run(settings: Settings) -> IngestResult:
    result = ingest(settings.source)
    write_result(result, interim_dir=settings.paths.interim, report_path=settings.paths.ingest_report)
    for name, r in result.report.items():
        log.info("%s: %d rows read = %d kept + %d quarantined", name, r.rows_read, r.rows_kept, r.rows_quarantined)
        for note in r.notes:
            log.warning("%s: %s", name, note)
    if len(result.quarantine):
        log.warning("%d rows quarantined with their reasons in %s", len(result.quarantine),
                    settings.paths.interim / QUARANTINE_FILE)
    return result
