"""The model's life in MLflow: tracking runs, the registry and its champion alias, which model scores,
promotion by the gates, and provenance."""
