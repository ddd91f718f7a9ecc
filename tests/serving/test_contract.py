"""The TF Serving contract, checked on the exported saved_model.pb."""

from __future__ import annotations

import shutil

import pytest
from tensorflow.core.protobuf import saved_model_pb2

from models.constants import (
    CLASSIFY_INPUT,
    CLASSIFY_METHOD,
    CLASSIFY_OUTPUTS,
    CLASSIFY_SIGNATURE,
    EXAMPLES_SIGNATURE,
    PREDICT_METHOD,
    PREDICT_SIGNATURE,
)
from serving import contract
from transforms import features as F

pytestmark = pytest.mark.component


def test_export_meets_the_tf_serving_contract(saved_model_dir):
    assert contract.check(str(saved_model_dir)) == []
    signatures = contract.signature_defs(str(saved_model_dir))
    classify = signatures[CLASSIFY_SIGNATURE]
    assert classify.method_name == CLASSIFY_METHOD == "tensorflow/serving/classify"
    assert list(classify.inputs) == [CLASSIFY_INPUT]
    assert set(classify.outputs) == set(CLASSIFY_OUTPUTS)
    assert signatures[PREDICT_SIGNATURE].method_name == PREDICT_METHOD
    assert set(signatures[PREDICT_SIGNATURE].inputs) == {f.name for f in F.FEATURES}


def test_contract_check_names_what_a_model_lacks(saved_model_dir, tmp_path):
    broken = tmp_path / "model"
    shutil.copytree(saved_model_dir, broken)
    saved_model = saved_model_pb2.SavedModel.FromString((broken / "saved_model.pb").read_bytes())
    signatures = saved_model.meta_graphs[0].signature_def
    signatures[CLASSIFY_SIGNATURE].method_name = PREDICT_METHOD
    del signatures[EXAMPLES_SIGNATURE]
    (broken / "saved_model.pb").write_bytes(saved_model.SerializeToString())
    problems = contract.check(str(broken))
    assert any("classify: method 'tensorflow/serving/predict'" in p for p in problems)
    assert any("no signature 'serving_examples'" in p for p in problems)
    assert contract.check(str(tmp_path / "nothing")) == [
        f"{tmp_path / 'nothing' / 'saved_model.pb'}: no saved_model.pb, so this is not a SavedModel"
    ]
