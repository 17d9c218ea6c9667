"""Point-in-time features from the interim records and activity: firmographic, contact, intent and
qualification (the framework rules), built by :func:`pipeline.features.build.build_features`."""
