"""The names of the files a stage writes inside its ``paths.*`` folder: declared once, read by every stage."""

from __future__ import annotations

# ingest -> paths.interim
QUARANTINE_FILE = "quarantine.csv"
FIELDS_FILE = "fields.json"
RECORDS_FILE = "records.parquet"
DISPLAY_FILE = "display.parquet"  # record_id + display-only columns (company, contact, owner): never read by features
EVENTS_FILE = "events.parquet"
EVENT_ACCOUNTS_FILE = "event_accounts.parquet"
INGEST_REPORT_FILE = "ingest_report.json"
MAPPING_FILE = "mapping.json"  # the explicit source: mapping the export was read with
CLOCK_FILE = "clock.json"  # the export's date and the rule that gave it (pipeline.data.clock)

# features -> paths.features
FEATURES_FILE = "features.parquet"
FEATURE_SPEC_FILE = "feature_spec.json"
RECIPE_FILE = "recipe.json"  # how the matrix was made from the export: the model carries it to scoring

# train -> paths.models (model.txt and model_meta.json are DVC outputs; provenance.json is not: it
# holds the time and the commit of the run, which differ on every run while the model bytes don't)
MODEL_FILE = "model.txt"
MODEL_META_FILE = "model_meta.json"
PROVENANCE_FILE = "provenance.json"

# generate -> paths.ground_truth
TRUTH_FILE = "truth.parquet"

# score -> paths.scores
SCORES_CSV = "scores.csv"
SCORES_PARQUET = "scores.parquet"
LEAD_BOARD = "lead_board.html"
DRIFT_REPORT = "drift.json"
SCORES_MANIFEST = "manifest.json"  # written last: every file above with its sha256 (pipeline.io.files.OutputSet)

# score -> paths.history (every scoring run of an export, appended: no DVC output)
HISTORY_SUFFIX = ".parquet"
