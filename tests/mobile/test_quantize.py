"""The data quantization is calibrated and checked on: stratified rows and range probes."""

from __future__ import annotations

import numpy as np
import pytest

from mobile import quantize
from transforms import features as F

pytestmark = pytest.mark.unit


def _columns(rows: int) -> dict[str, np.ndarray]:
    """`rows` synthetic raw rows: numbers mid-range (NaN in every 7th optional), text "x"."""
    rng = np.random.default_rng(0)
    columns = {}
    for f in F.FEATURES:
        if f.dtype is str:
            columns[f.name] = np.array([b"x"] * rows, dtype=object)
            continue
        low = f.min_value if f.min_value is not None else 0
        high = f.max_value if f.max_value is not None else 10
        values = rng.uniform(low + (high - low) / 4, high - (high - low) / 4, rows)
        values = values.astype(F.numpy_dtype(f.dtype))
        if f.optional:
            values[::7] = np.nan
        columns[f.name] = values
    return columns


def test_range_features_are_the_model_inputs_with_a_registry_range():
    names = {f.name for f in quantize.range_features()}
    assert {"precip_4h", "plane_engines", "distance", "sched_dep_time", "day_of_week"} <= names
    assert "month" not in names  # context, not a model input
    assert all(F.BY_NAME[n].min_value is not None for n in names)


def test_stratified_rows_keep_each_features_rare_extremes():
    """A rare real maximum (one row of 1,000 with 1.43 in of rain in 4 hours) and every range
    feature's smallest and largest observed value are in a 100-row selection."""
    columns = _columns(1000)
    columns["precip_4h"][:] = 0.0
    columns["precip_4h"][637] = 1.43
    columns["plane_engines"][:] = 2.0
    columns["plane_engines"][412] = 4.0
    picked = quantize.stratified_rows(columns, 100)
    assert len(picked) == 100 and len(set(picked)) == 100
    assert list(picked) == sorted(picked)
    assert {637, 412} <= set(picked)
    for feature in quantize.range_features():
        values = columns[feature.name].astype(np.float64)
        chosen = values[picked]
        assert np.nanmax(chosen) == np.nanmax(values), feature.name
        assert np.nanmin(chosen) == np.nanmin(values), feature.name
    assert len(quantize.stratified_rows(_columns(30), 100)) == 30  # no more rows than given


def test_range_probes_set_one_feature_at_a_time_to_each_end_of_its_range():
    columns = _columns(50)
    base = np.array([3, 10, 20])
    probes, labels = quantize.range_probes(columns, base)
    features = quantize.range_features()
    assert len(labels) == len(features) * 2 * len(base)
    for f in F.FEATURES:
        assert len(probes[f.name]) == len(labels) and probes[f.name].dtype == columns[f.name].dtype
    row = 0
    for feature in features:
        for end, value in (("min", feature.min_value), ("max", feature.max_value)):
            for b in base:
                assert labels[row] == f"{feature.name} = {value:g} ({end})"
                for f in F.FEATURES:
                    got, want = probes[f.name][row], columns[f.name][b]
                    if f is feature:
                        assert got == value
                    elif f.dtype is str or not np.isnan(want):
                        assert got == want, (feature.name, f.name)
                row += 1
    representative = quantize.representative_columns(columns, rows=20, probe_rows=2)
    assert len(representative["distance"]) == 20 + len(features) * 2 * 2
    assert np.nanmax(representative["precip_4h"]) == F.BY_NAME["precip_4h"].max_value
