"""The reference runner refuses the non-finite numbers the contract calls invalid."""

from __future__ import annotations

import math

import numpy as np
import pytest

from mobile import publish, runtime
from transforms import codec
from transforms import features as F

pytestmark = pytest.mark.component

FLOATS = tuple(f for f in F.FEATURES if f.dtype is float)


def _float32(built) -> bytes:
    _, _, work = built
    return runtime.read(str(work / runtime.file_name("float32")))


def test_non_finite_values_the_contract_forbids_are_refused_naming_the_feature(
    built, records, monkeypatch
):
    """Every float feature: NaN, +Inf and -Inf where it is required, +/-Inf where it is
    optional, each in one row of five, raise ValueError naming the feature and the row; the
    bare interpreter answers them with meaningless probabilities."""
    model = _float32(built)
    columns = codec.columns_from_examples(records[:5])
    for feature in FLOATS:
        invalid = (math.inf, -math.inf) if feature.optional else (math.nan, math.inf, -math.inf)
        for value in invalid:
            bad = dict(columns, **{feature.name: columns[feature.name].copy()})
            bad[feature.name][3] = value
            with pytest.raises(ValueError, match=rf"feature '{feature.name}'.*rows \[3\]"):
                runtime.predict(model, bad)
            with pytest.raises(ValueError, match=rf"feature '{feature.name}'"):
                runtime.feed(bad, 3)
    # Why the runner checks: the interpreter answers such rows without a word (e.g. as if a
    # NaN distance were 0 miles, or 1.0 for an infinite temperature).
    monkeypatch.setattr(runtime, "check_finite", lambda feature, values: None)
    for name, value in (("distance", math.nan), ("temp", math.inf)):
        unchecked = dict(columns, **{name: np.full(5, value, np.float32)})
        assert runtime.predict(model, unchecked).shape == (5,)


def test_nan_in_an_optional_number_is_absent(built, records):
    """NaN in an optional float input is its missing marker: accepted, answered like an
    absent value (a finite probability)."""
    model = _float32(built)
    columns = codec.columns_from_examples(records[:5])
    for feature in (f for f in FLOATS if f.optional):
        absent = dict(columns, **{feature.name: np.full(5, np.nan, np.float32)})
        scores = runtime.predict(model, absent)
        assert scores.shape == (5,) and np.all((scores >= 0) & (scores <= 1)), feature.name


def test_contract_states_the_non_finite_rule_of_every_float_input(tf_transform_output):
    """contract.json says, per float input, whether NaN means absent and that infinities are
    invalid, with the serving side's wording; and that the interpreter does not check."""
    doc = publish.contract(tf_transform_output, "trained on Jan, evaluated on Nov")
    by_name = {entry["name"]: entry for entry in doc["inputs"]}
    for feature in F.FEATURES:
        entry = by_name[feature.name]
        if feature.dtype is not float:
            assert "non_finite" not in entry, feature.name
            continue
        rule = entry["non_finite"]
        assert rule["nan"] == ("absent (the missing marker)" if feature.optional else "invalid")
        assert rule["infinity"] == "invalid"
        assert rule["rule"] == codec.NON_FINITE_RULES[feature.optional]
    assert "does not check" in doc["invalid_values"]
