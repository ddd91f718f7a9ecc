"""Typed config, data preparation, the TFX pipeline definition and the run summary."""
