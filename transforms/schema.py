"""The curated schema, shipped as package data so the Kubeflow image has it too."""

from __future__ import annotations

import pathlib

SCHEMA_DIR = pathlib.Path(__file__).parent / "schema"
SCHEMA_FILE = SCHEMA_DIR / "schema.pbtxt"


def load():
    """The curated schema as a tensorflow_metadata Schema proto."""
    from google.protobuf import text_format
    from tensorflow_metadata.proto.v0 import schema_pb2

    return text_format.Parse(SCHEMA_FILE.read_text(), schema_pb2.Schema())
