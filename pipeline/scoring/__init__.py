"""Scoring feature rows with a model: the scorer (probability, score, grade, reasons), what would raise
it, the checklist, the next step, and batches streamed in chunks or run on Dask."""
