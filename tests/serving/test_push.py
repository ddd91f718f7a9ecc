"""Atomic pushes into TF Serving's versioned layout."""

from __future__ import annotations

import pathlib
import time

import pytest
import tensorflow as tf

from models.constants import MODEL_NAME
from serving import push, warmup

pytestmark = pytest.mark.component


def test_push_makes_complete_growing_versions_and_leaves_no_staging(
    saved_model_dir, warmup_file, tmp_path
):
    base = tmp_path / MODEL_NAME
    first, first_dir = push.push(str(saved_model_dir), str(base), warmup_file)
    second, _ = push.push(str(saved_model_dir), str(base))
    assert second > first >= int(time.time()) - 60
    assert sorted(p.name for p in base.iterdir()) == [str(first), str(second)]
    assert push.versions(str(base)) == [first, second]
    pushed = pathlib.Path(first_dir)
    assert (pushed / "assets.extra" / warmup.WARMUP_FILE).read_bytes() == pathlib.Path(
        warmup_file
    ).read_bytes()
    copied = sorted(p.relative_to(pushed) for p in pushed.rglob("*") if p.is_file())
    original = sorted(
        p.relative_to(saved_model_dir) for p in saved_model_dir.rglob("*") if p.is_file()
    )
    assert copied == sorted([*original, pathlib.Path(warmup.WARMUP_DIR, warmup.WARMUP_FILE)])


def test_a_failed_push_leaves_nothing_a_server_could_load(saved_model_dir, tmp_path, monkeypatch):
    base = tmp_path / MODEL_NAME

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(tf.io.gfile, "rename", fail)
    with pytest.raises(OSError, match="disk full"):
        push.push(str(saved_model_dir), str(base))
    assert list(base.iterdir()) == []
    with pytest.raises(FileNotFoundError, match=r"no saved_model\.pb"):
        push.push(str(tmp_path / "missing"), str(base))


def test_a_version_holding_the_same_model_is_found_by_its_fingerprint(saved_model_dir, tmp_path):
    base = tmp_path / MODEL_NAME
    assert push.version_holding(str(saved_model_dir), str(base)) is None
    version, target = push.push(str(saved_model_dir), str(base))
    assert push.fingerprint(target) == push.fingerprint(str(saved_model_dir)) is not None
    assert push.version_holding(str(saved_model_dir), str(base)) == version

    other = tf.Module()
    other.v = tf.Variable(1.0)
    tf.saved_model.save(other, str(tmp_path / "other"))
    assert push.fingerprint(str(tmp_path / "other")) != push.fingerprint(str(saved_model_dir))
    assert push.version_holding(str(tmp_path / "other"), str(base)) is None
    assert push.fingerprint(str(tmp_path / "no_model")) is None
