"""Files and tables on disk: atomic writes, JSON, hashing, and CSV or Parquet tables read and written in chunks."""
