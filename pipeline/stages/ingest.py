"""The ingest stage: the export named by ``source`` -> ``paths.interim`` (validated tables, quarantine
with reasons) and the row counts -> ``paths.ingest_report``."""

from __future__ import annotations

import logging

from pipeline.config import Settings
from pipeline.contracts.files import QUARANTINE_FILE
from pipeline.data.ingest import IngestFailed, IngestResult, ingest, write_failure, write_result
from pipeline.errors import DataError

log = logging.getLogger(__name__)


def run(settings: Settings) -> IngestResult:
    try:
        result = ingest(settings.source, work_dir=settings.paths.interim)
    except IngestFailed as failed:  # the reasons stay readable: the quarantine and the report are written
        write_failure(failed.result, interim_dir=settings.paths.interim, report_path=settings.paths.ingest_report)
        raise DataError(f"{failed} The quarantined rows and their reasons: {settings.paths.interim / QUARANTINE_FILE}; "
                        f"the counts: {settings.paths.ingest_report}.") from None
    write_result(result, interim_dir=settings.paths.interim, report_path=settings.paths.ingest_report)
    for name, r in result.report.items():
        log.info("%s: %d rows read = %d kept + %d quarantined", name, r.rows_read, r.rows_kept, r.rows_quarantined)
        for note in r.notes:
            log.warning("%s: %s", name, note)
    if len(result.quarantine):
        log.warning("%d rows quarantined with their reasons in %s", len(result.quarantine),
                    settings.paths.interim / QUARANTINE_FILE)
    return result
