"""Feature registry, Transform's preprocessing_fn and the curated schema."""
