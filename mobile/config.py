"""Settings of the TFLite variants and their gates. A leaf: importing it loads no TensorFlow."""

from __future__ import annotations

import dataclasses


@dataclasses.dataclass(frozen=True)
class MobileConfig:
    auc_tolerance: float = 0.005  # a quantized variant may lose at most this much eval AUC
    float32_tolerance: float = 1e-4  # max |TFLite - SavedModel| probability for float32
    min_parity_rows: int = 1000
    eval_rows: int = 100_000  # all of Nov-Dec (55,403 flights)
    representative_rows: int = 300
    latency_runs: int = 500
