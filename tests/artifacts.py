"""Hand-made TFX artifacts for tests that run component executors directly."""

from __future__ import annotations


def make_artifact(kind, uri, **int_properties):
    """An artifact of type `kind` at `uri` with the given int custom properties."""
    artifact = kind()
    artifact.uri = str(uri)
    for name, value in int_properties.items():
        artifact.set_int_custom_property(name, value)
    return artifact
