"""The atomic Pusher: needs both blessings; ships the warmup requests in the version."""

from __future__ import annotations

import shutil

import pytest
from google.protobuf import json_format
from tfx.proto import pusher_pb2
from tfx.types import standard_artifacts

from artifacts import make_artifact
from pipeline.components.pusher import AtomicPushExecutor
from serving import warmup

pytestmark = pytest.mark.component


def _push(model_dir, blessed: int, infra_blessed: int, tmp_path, run: str = "pushed"):
    model = make_artifact(standard_artifacts.Model, model_dir.parent)
    blessing = make_artifact(standard_artifacts.ModelBlessing, tmp_path, blessed=blessed)
    (tmp_path / "infra").mkdir(exist_ok=True)
    (tmp_path / "infra" / warmup.WARMUP_FILE).write_bytes(b"warmup records")
    infra = make_artifact(
        standard_artifacts.InfraBlessing, tmp_path / "infra", blessed=infra_blessed
    )
    (tmp_path / run).mkdir()
    pushed = make_artifact(standard_artifacts.PushedModel, tmp_path / run)
    destination = pusher_pb2.PushDestination(
        filesystem=pusher_pb2.PushDestination.Filesystem(base_directory=str(tmp_path / "serving"))
    )
    AtomicPushExecutor().Do(
        {"model": [model], "model_blessing": [blessing], "infra_blessing": [infra]},
        {"pushed_model": [pushed]},
        {"push_destination": json_format.MessageToJson(destination)},
    )
    return pushed


@pytest.fixture
def model_dir(saved_model_dir, tmp_path):
    target = tmp_path / "model" / "Format-Serving"
    shutil.copytree(saved_model_dir, target)
    return target


@pytest.mark.parametrize("blessed, infra_blessed", [(1, 0), (0, 1)])
def test_nothing_is_pushed_without_both_blessings(model_dir, tmp_path, blessed, infra_blessed):
    pushed = _push(model_dir, blessed, infra_blessed, tmp_path)
    assert pushed.get_int_custom_property("pushed") == 0
    assert not (tmp_path / "serving").exists()


def test_a_blessed_model_is_pushed_with_its_warmup_requests(model_dir, tmp_path):
    pushed = _push(model_dir, 1, 1, tmp_path)
    version = pushed.get_string_custom_property("pushed_version")
    assert pushed.get_int_custom_property("pushed") == 1
    assert [p.name for p in (tmp_path / "serving").iterdir()] == [version]
    assert (tmp_path / "serving" / version / "saved_model.pb").exists()
    assert (
        tmp_path / "serving" / version / warmup.WARMUP_DIR / warmup.WARMUP_FILE
    ).read_bytes() == b"warmup records"


def test_a_model_already_served_is_not_pushed_again(model_dir, tmp_path):
    """An unchanged re-run on Vertex re-blesses the same model (TFX's baseline resolver hands
    it its own model); the Pusher records the version that holds it and writes nothing."""
    first = _push(model_dir, 1, 1, tmp_path)
    again = _push(model_dir, 1, 1, tmp_path, run="pushed_again")
    version = first.get_string_custom_property("pushed_version")
    assert first.get_int_custom_property("already_pushed") == 0
    assert again.get_int_custom_property("pushed") == 1
    assert again.get_int_custom_property("already_pushed") == 1
    assert again.get_string_custom_property("pushed_version") == version
    assert [p.name for p in (tmp_path / "serving").iterdir()] == [version]
