"""Settings of the TFLite variants and their gates. A leaf: importing it loads no TensorFlow."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class MobileConfig:
    auc_tolerance: float = 0.005  # a quantized variant may lose at most this much eval AUC
    float32_tolerance: float = 1e-4  # max |TFLite - SavedModel| probability for float32
    min_parity_rows: int = 1000
    eval_rows: int = 100_000  # all of Nov-Dec (55,403 flights)
    # Full-integer calibration: `representative_rows` training rows are read, `calibration_rows`
    # of them chosen to cover every feature's observed values (quantize.stratified_rows), plus
    # the range-end probes of `calibration_probe_rows` of those (quantize.range_probes).
    representative_rows: int = 2000
    calibration_rows: int = 300
    calibration_probe_rows: int = 8
    # Range-end parity: `probe_rows` stratified eval rows, each with one range feature at its
    # registry min_value or max_value; a variant's max |variant - SavedModel| probability on
    # them may be at most `float32_tolerance` (float32) or `probe_tolerance` (quantized).
    # Full-year model: float16 0.002, dynamic-range int8 0.075 (0.041 on eval rows), full-integer
    # int8 0.86-1.0 (its one activation scale for every input cannot span the ranges).
    probe_rows: int = 16
    probe_tolerance: float = 0.1
    latency_runs: int = 500
