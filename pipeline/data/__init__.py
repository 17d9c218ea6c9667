"""Getting an export in: reading CRM values, the source mapping, ingest, `leadscore inspect`, and the
synthetic generator."""
