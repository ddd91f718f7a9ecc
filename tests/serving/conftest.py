"""Shared by the serving tests: warmup requests cut from the sample."""

from __future__ import annotations

import pytest

from models.constants import MODEL_NAME
from serving import warmup


@pytest.fixture(scope="session")
def warmup_file(records, tmp_path_factory) -> str:
    """A TF Serving warmup file (PredictionLogs) built from the first sample rows."""
    path = str(tmp_path_factory.mktemp("warmup") / warmup.WARMUP_FILE)
    warmup.write(path, warmup.build(records, MODEL_NAME))
    return path
