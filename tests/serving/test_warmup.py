"""Warmup requests: PredictionLogs cut from real rows, replayed in (and out of) process."""

from __future__ import annotations

import shutil

import pytest
import tensorflow as tf

from models.constants import PREDICT_SIGNATURE
from serving import warmup
from transforms import features as F

pytestmark = pytest.mark.component


def test_warmup_records_parse_as_prediction_logs_from_real_rows_and_replay(
    warmup_file, saved_model_dir, records
):
    logs = warmup.read(warmup_file)
    kinds = [log.WhichOneof("log_type") for log in logs]
    assert kinds == (
        ["predict_log"] * len(warmup.PREDICT_BATCHES)
        + ["classify_log"] * len(warmup.CLASSIFY_BATCHES)
    )
    first = logs[0].predict_log.request
    assert first.model_spec.signature_name == PREDICT_SIGNATURE
    assert set(first.inputs) == {f.name for f in F.FEATURES}
    carrier = tf.make_ndarray(first.inputs["carrier"])
    assert carrier.tolist() == [
        tf.train.Example.FromString(records[0]).features.feature["carrier"].bytes_list.value[0]
    ]
    batches = [
        len(tf.make_ndarray(log.predict_log.request.inputs["distance"]))
        for log in logs
        if log.HasField("predict_log")
    ]
    assert batches == list(warmup.PREDICT_BATCHES)
    assert warmup.replay(tf.saved_model.load(str(saved_model_dir)), logs) == []


def test_load_and_query_reports_a_model_without_variables(saved_model_dir, warmup_file, tmp_path):
    broken = tmp_path / "model"
    shutil.copytree(saved_model_dir, broken)
    shutil.rmtree(broken / "variables")
    report = warmup.load_and_query(str(broken), warmup_file)
    assert report.ok is False
    assert report.problems[0].startswith("loading failed:")
