"""Learning and judging a model: the split, the leakage guard, training and tuning, calibration,
baselines, metrics, the gates as pure decisions, drift, and the model as files."""
