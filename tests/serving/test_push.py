"""Publication into TF Serving's versioned layout: atomic on a local disk, ordered on an object
store, idempotent, and both folders of a version or neither."""

from __future__ import annotations

import json
import pathlib
import shutil
import time
import uuid

import pytest
import tensorflow as tf

from models.constants import MODEL_NAME
from serving import push, warmup

pytestmark = pytest.mark.component


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> pathlib.Path:
    """A SavedModel with variables, as small as they come."""
    module = tf.Module()
    module.v = tf.Variable([1.0, 2.0])
    module.f = tf.function(lambda x: x * module.v, input_signature=[tf.TensorSpec([2])])
    out = tmp_path_factory.mktemp("tiny") / "model"
    tf.saved_model.save(module, str(out))
    return out


def _files(folder: pathlib.Path) -> dict[str, bytes]:
    return {
        str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()
    }


def _docs_folder(base: pathlib.Path) -> push.Folder:
    """A second folder of a version: one document naming the model, its marker."""

    def content(version: int, model: dict) -> list[tuple[str, push.Source]]:
        return [("doc.json", json.dumps({**model, "version": version}).encode())]

    return push.Folder(str(base), "doc.json", content)


def _saved(module: tf.Module, path: pathlib.Path) -> str:
    tf.saved_model.save(module, str(path))
    return str(path)


def test_push_makes_complete_growing_versions_and_leaves_no_staging(
    tiny_model, warmup_file, tmp_path
):
    base = tmp_path / MODEL_NAME
    first, first_dir = push.push(str(tiny_model), str(base), warmup_file)
    second, _ = push.push(str(tiny_model), str(base))
    assert second > first >= int(time.time()) - 60
    assert sorted(p.name for p in base.iterdir()) == [str(first), str(second)]
    assert push.versions(str(base)) == [first, second]
    pushed = pathlib.Path(first_dir)
    assert (pushed / "assets.extra" / warmup.WARMUP_FILE).read_bytes() == pathlib.Path(
        warmup_file
    ).read_bytes()
    copied = sorted(p.relative_to(pushed) for p in pushed.rglob("*") if p.is_file())
    original = sorted(p.relative_to(tiny_model) for p in tiny_model.rglob("*") if p.is_file())
    assert copied == sorted(
        [*original, pathlib.Path(warmup.WARMUP_DIR, warmup.WARMUP_FILE), pathlib.Path(push.MARKER)]
    )
    assert json.loads((pushed / push.MARKER).read_text()) == {
        "model_uri": str(tiny_model),
        "model_fingerprint": push.fingerprint(str(tiny_model)),
        "version": first,
    }


def test_a_failed_push_leaves_nothing_a_server_could_load(tiny_model, tmp_path, monkeypatch):
    base = tmp_path / MODEL_NAME

    def fail(*args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(tf.io.gfile, "rename", fail)
    with pytest.raises(OSError, match="disk full"):
        push.push(str(tiny_model), str(base))
    assert list(base.iterdir()) == []
    with pytest.raises(FileNotFoundError, match=r"no saved_model\.pb"):
        push.push(str(tmp_path / "missing"), str(base))


def test_publishing_a_model_a_version_holds_writes_nothing(tiny_model, tmp_path):
    """Found by the marker's fingerprint; another model gets a new version; a SavedModel
    without a fingerprint is known by its artifact URI."""
    base = tmp_path / MODEL_NAME
    model = push.identity(str(tiny_model), "/pipeline/Trainer/model/7")
    first = push.publish([push.saved_model_folder(str(tiny_model), str(base))], model)
    before = _files(base)
    again = push.publish([push.saved_model_folder(str(tiny_model), str(base))], model)
    assert (again.version, again.written) == (first.version, [False])
    assert _files(base) == before

    other = tf.Module()
    other.v = tf.Variable(3.0)
    _saved(other, tmp_path / "other")
    assert push.fingerprint(str(tmp_path / "other")) != model["model_fingerprint"]
    second = push.publish(
        [push.saved_model_folder(str(tmp_path / "other"), str(base))],
        push.identity(str(tmp_path / "other"), "/pipeline/Trainer/model/8"),
    )
    assert second.version > first.version and second.written == [True]

    (tmp_path / "other" / "fingerprint.pb").unlink()
    unprinted = push.identity(str(tmp_path / "other"), "/pipeline/Trainer/model/9")
    assert unprinted["model_fingerprint"] is None
    third = push.publish([push.saved_model_folder(str(tmp_path / "other"), str(base))], unprinted)
    again = push.publish([push.saved_model_folder(str(tmp_path / "other"), str(base))], unprinted)
    assert third.version > second.version and (again.version, again.written) == (
        third.version,
        [False],
    )


def test_a_version_is_never_overwritten_with_another_model(tiny_model, tmp_path):
    base = tmp_path / MODEL_NAME
    (base / "17" / "variables").mkdir(parents=True)
    (base / "17" / "saved_model.pb").write_bytes(b"someone else's model")
    before = _files(base)
    with pytest.raises(FileExistsError, match="17 already exists"):
        push.publish(
            [push.saved_model_folder(str(tiny_model), str(base))],
            push.identity(str(tiny_model), "uri"),
            version=17,
        )
    assert _files(base) == before


def test_a_publication_a_kill_interrupted_is_completed_and_its_staging_swept(tiny_model, tmp_path):
    """kill -9 after the first folder was renamed into place: the next publication of the
    model completes that version (writing only what is missing) instead of failing or making
    a second one, and removes the staging folders the killed process left."""
    serving, docs = tmp_path / "serving", tmp_path / "docs"
    model = push.identity(str(tiny_model), "/pipeline/Trainer/model/7")

    def folders():
        return [_docs_folder(docs), push.saved_model_folder(str(tiny_model), str(serving))]

    first = push.publish(folders(), model)
    shutil.rmtree(serving / str(first.version))  # killed before the serving rename
    for base in (serving, docs):
        (base / f".publishing-{first.version + 1}-deadbeef" / "variables").mkdir(parents=True)
    docs_before = _files(docs)

    again = push.publish(folders(), model)
    assert (again.version, again.written) == (first.version, [False, True])
    assert [p.name for p in serving.iterdir()] == [str(first.version)]
    assert [p.name for p in docs.iterdir()] == [str(first.version)]
    assert _files(docs) == docs_before
    assert (serving / str(first.version) / "saved_model.pb").exists()


def test_a_half_published_version_older_than_the_served_one_is_not_completed(tiny_model, tmp_path):
    """Completing it would put the model behind a newer served version: it gets a new one."""
    serving, docs = tmp_path / "serving", tmp_path / "docs"
    model = push.identity(str(tiny_model), "uri")
    first = push.publish(
        [_docs_folder(docs), push.saved_model_folder(str(tiny_model), str(serving))], model
    )
    shutil.rmtree(serving / str(first.version))  # killed before the serving rename
    newer = tf.Module()
    newer.v = tf.Variable(5.0)
    newer_dir = _saved(newer, tmp_path / "newer")
    served = push.publish(
        [_docs_folder(docs), push.saved_model_folder(newer_dir, str(serving))],
        push.identity(newer_dir, "newer"),
    )
    again = push.publish(
        [_docs_folder(docs), push.saved_model_folder(str(tiny_model), str(serving))], model
    )
    assert again.version > served.version > first.version
    assert push.versions(str(serving)) == [served.version, again.version]


def test_a_failure_before_the_last_folder_is_in_place_leaves_every_base_unchanged(
    tiny_model, tmp_path
):
    """Both or neither: the folders a failed publication wrote are removed again."""
    serving, docs = tmp_path / "serving", tmp_path / "docs"
    push.publish(
        [_docs_folder(docs), push.saved_model_folder(str(tiny_model), str(serving))],
        push.identity(str(tiny_model), "uri"),
    )
    before = _files(serving), _files(docs)
    newer = tf.Module()
    newer.v = tf.Variable(5.0)
    model_dir = _saved(newer, tmp_path / "newer")
    folder = push.saved_model_folder(model_dir, str(serving))
    (tmp_path / "newer" / "variables" / "variables.index").unlink()  # unreadable mid-copy
    with pytest.raises(tf.errors.NotFoundError, match=r"variables\.index"):
        push.publish([_docs_folder(docs), folder], push.identity(model_dir, "newer"))
    assert (_files(serving), _files(docs)) == before


class _ObjectStore:
    """TF's in-memory `ram://` filesystem behaving as TF's GCS one does where it matters:
    a directory rename copies its objects one by one in name order. Records the order in which
    files appear."""

    def __init__(self, monkeypatch):
        self.appeared: list[str] = []
        copy, gfile = tf.io.gfile.copy, tf.io.gfile.GFile

        def record_copy(source, target, overwrite=False):
            copy(source, target, overwrite)
            self.appeared.append(target)

        def record_open(path, mode="r"):
            if "w" in mode:
                self.appeared.append(path)
            return gfile(path, mode)

        def rename_object_by_object(source, target, overwrite=False):
            for directory, _, names in sorted(tf.io.gfile.walk(source)):
                for name in sorted(names):
                    path = f"{directory}/{name}"
                    record_copy(path, target + path[len(source) :], overwrite)
            tf.io.gfile.rmtree(source)

        monkeypatch.setattr(tf.io.gfile, "copy", record_copy)
        monkeypatch.setattr(tf.io.gfile, "GFile", record_open)
        monkeypatch.setattr(tf.io.gfile, "rename", rename_object_by_object)


def test_an_object_store_sees_saved_model_pb_only_after_every_variables_file(
    tiny_model, monkeypatch
):
    """TF Serving loads a version once its saved_model.pb is there; on an object store the
    variables must be there before it, so nothing is staged and renamed."""
    store = _ObjectStore(monkeypatch)
    base = f"ram://bucket-{uuid.uuid4().hex}/serving/{MODEL_NAME}"
    version, target = push.push(str(tiny_model), base)
    in_version = [p[len(target) + 1 :] for p in store.appeared if p.startswith(target + "/")]
    variables = [p for p in in_version if p.startswith("variables/")]
    assert variables and in_version[-1] == "saved_model.pb"
    assert in_version[0] == push.MARKER  # a half-written version names its model
    assert [p.rstrip("/") for p in tf.io.gfile.listdir(base)] == [str(version)]
    loaded = tf.saved_model.load(target)
    assert loaded.f(tf.constant([3.0, 3.0])).numpy().tolist() == [3.0, 6.0]


def test_a_half_written_version_on_an_object_store_is_completed_in_place(tiny_model):
    """A process killed while writing a version into a bucket: the marker (written first)
    names the model, so the next publication of the model finishes that version."""
    base = f"ram://bucket-{uuid.uuid4().hex}/serving"
    folder = push.saved_model_folder(str(tiny_model), base)
    model = push.identity(str(tiny_model), "uri")
    half = folder.content(42, model)[:2]  # the marker and a variables file
    for relative, source in half:
        path = f"{base}/42/{relative}"
        tf.io.gfile.makedirs(path.rsplit("/", 1)[0])
        if isinstance(source, bytes):
            with tf.io.gfile.GFile(path, "wb") as f:
                f.write(source)
        else:
            tf.io.gfile.copy(source, path)
    published = push.publish([folder], model)
    assert (published.version, published.written) == (42, [True])
    assert tf.io.gfile.exists(f"{base}/42/saved_model.pb")
    assert push.versions(base) == [42]
