"""Shared by the mobile tests: every variant converted and measured once per session."""

from __future__ import annotations

import pytest
import tensorflow as tf

from mobile import gates, quantize
from mobile.config import MobileConfig

CONFIG = MobileConfig(min_parity_rows=500, representative_rows=100, latency_runs=30)


def _uncalibrated_int8(converter, representative) -> bytes:
    """A variant the converter refuses: full-integer quantization without calibration data."""
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.target_spec.supported_types = [tf.int8]
    return converter.convert()


@pytest.fixture(scope="session")
def mobile_config() -> MobileConfig:
    """Gates sized for the 600-row sample."""
    return CONFIG


@pytest.fixture(scope="session")
def built(saved_model_dir, transform_output_dir, records, tmp_path_factory):
    """(results by variant, the SavedModel's figures, the work folder) of every variant plus
    one that cannot convert."""
    work = tmp_path_factory.mktemp("mobile_work")
    quantizers = {**quantize.QUANTIZERS, "uncalibrated_int8": _uncalibrated_int8}
    results, baseline = gates.build_variants(
        str(saved_model_dir),
        str(transform_output_dir),
        records,
        records[:100],
        str(work),
        CONFIG,
        quantizers,
    )
    return {r.variant: r for r in results}, baseline, work
