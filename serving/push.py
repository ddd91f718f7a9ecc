"""Publication into versioned layouts, `<base>/<integer version>/`: TF Serving's SavedModels
and, under the same version, what else goes with them (the mobile variants).

TF Serving polls a base directory and loads any new integer-named directory. How a version
folder is made to appear complete depends on where it goes:

- a local (POSIX) path: the folder is assembled under a dot-name, `.publishing-<version>-<id>`,
  which TF Serving ignores, and renamed into place, so it appears complete or not at all;
- an object store (`gs://`, any `scheme://` but `file://`): TF renames a directory there object
  by object in name order (`saved_model.pb` before `variables/`), so nothing is renamed: the
  files are written straight into the version folder in their given order, the completion file
  last. For a SavedModel that is `saved_model.pb`, after `variables/` and the assets: TF
  Serving's file-system poller loads a version only once its `saved_model.pb` is there.

Publishing is idempotent. Every folder holds a marker, a JSON document naming the model
artifact's URI and the SavedModel's fingerprint (`identity`). A folder whose marker names the
model and whose completion file exists counts as done; a publication of a model that a version
already holds, in any of its folders, completes that version instead of making a new one.
Staging folders left by a killed publication are removed at the next publication into the same
base: publications into one base do not overlap (a local run holds the run lock; object stores
get no staging folders).
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
import uuid
from collections.abc import Callable

import tensorflow as tf

from serving.warmup import WARMUP_DIR, WARMUP_FILE

STAGING_PREFIX = ".publishing-"
MARKER = os.path.join(WARMUP_DIR, "publication.json")
"""A SavedModel version's marker; TF Serving ignores assets.extra/ beyond its warmup file."""

Source = str | bytes
"""A file to copy (its path) or the bytes to write."""


@dataclasses.dataclass(frozen=True)
class Folder:
    """What one base directory gets for a version.

    `content(version, identity)` lists (path relative to `<base_dir>/<version>`, Source) in the
    order they are written, the completion file last; `marker` is the relative path of the one
    that names the model: a JSON document with `identity`'s keys.
    """

    base_dir: str
    marker: str
    content: Callable[[int, dict], list[tuple[str, Source]]]


@dataclasses.dataclass(frozen=True)
class Publication:
    """Where `publish` put a version: per folder, in order, the directory and whether this
    publication wrote it (False: it already held the model)."""

    version: int
    targets: list[str]
    written: list[bool]


def versions(base_dir: str) -> list[int]:
    """The integer versions under `base_dir`, oldest first."""
    if not tf.io.gfile.isdir(base_dir):
        return []
    names = (name.rstrip("/") for name in tf.io.gfile.listdir(base_dir))
    return sorted(int(name) for name in names if name.isdigit())


def next_version(base_dirs: list[str]) -> int:
    """The Unix time, or one more than the newest version under any of `base_dirs` if that is
    later: versions only grow, and no base has the number yet."""
    return max([int(time.time()), *(v + 1 for base in base_dirs for v in versions(base))])


def fingerprint(model_dir: str) -> str | None:
    """The identity of a SavedModel: TF's fingerprint (fingerprint.pb, which
    tf.saved_model.save writes since TF 2.12) as `<saved_model_checksum>-<checkpoint_hash>`,
    i.e. the graph and the variables; None for a SavedModel without one. Copies of one
    export share it; two trainings do not."""
    if not tf.io.gfile.exists(os.path.join(model_dir, "fingerprint.pb")):
        return None
    found = tf.saved_model.experimental.read_fingerprint(model_dir)
    return f"{found.saved_model_checksum}-{found.checkpoint_hash}"


def identity(model_dir: str, model_uri: str) -> dict:
    """What a marker says about the model: the artifact's URI and the SavedModel's fingerprint.
    Two models are the same when their fingerprints are; without one, when their URIs are."""
    return {"model_uri": model_uri, "model_fingerprint": fingerprint(model_dir)}


def _holds(folder_dir: str, marker: str, model: dict) -> bool:
    path = os.path.join(folder_dir, marker)
    if tf.io.gfile.exists(path):
        with tf.io.gfile.GFile(path) as f:
            found = json.load(f)
    else:  # a SavedModel version pushed before markers existed
        found = {"model_fingerprint": fingerprint(folder_dir)}
    if model["model_fingerprint"] is not None:
        return found.get("model_fingerprint") == model["model_fingerprint"]
    return found.get("model_uri") == model["model_uri"]


def _version_holding(folders: list[Folder], model: dict) -> int | None:
    # A version the last folder (the commit) holds, or one only the others hold (a publication
    # a kill interrupted) if completing it keeps the last folder's versions growing.
    newest_committed = max(versions(folders[-1].base_dir), default=-1)
    found = []
    for folder in folders:
        for version in reversed(versions(folder.base_dir)):
            if _holds(os.path.join(folder.base_dir, str(version)), folder.marker, model):
                if folder is folders[-1] or version > newest_committed:
                    found.append(version)
                break
    return max(found, default=None)


def is_object_store(path: str) -> bool:
    """Whether `path` is on a store without atomic directory renames (`scheme://`, not
    `file://`)."""
    return "://" in path and not path.startswith("file://")


def _remove(path: str) -> None:
    if tf.io.gfile.exists(path):
        tf.io.gfile.rmtree(path)


def _sweep(base_dir: str) -> None:
    for name in tf.io.gfile.listdir(base_dir):
        if name.startswith(STAGING_PREFIX):
            _remove(os.path.join(base_dir, name.rstrip("/")))


def _write_files(folder_dir: str, files: list[tuple[str, Source]]) -> None:
    for relative, source in files:
        path = os.path.join(folder_dir, relative)
        tf.io.gfile.makedirs(os.path.dirname(path))
        if isinstance(source, bytes):
            with tf.io.gfile.GFile(path, "wb") as f:
                f.write(source)
        else:
            tf.io.gfile.copy(source, path, overwrite=True)


def _write(base_dir: str, version: int, files: list[tuple[str, Source]]) -> str:
    target = os.path.join(base_dir, str(version))
    if is_object_store(base_dir):
        try:
            _write_files(target, files)
        except BaseException:
            _remove(target)
            raise
        return target
    staging = os.path.join(base_dir, f"{STAGING_PREFIX}{version}-{uuid.uuid4().hex[:8]}")
    try:
        _write_files(staging, files)
        tf.io.gfile.rename(staging, target)
    except BaseException:
        _remove(staging)
        raise
    return target


def publish(folders: list[Folder], model: dict, version: int | None = None) -> Publication:
    """Publishes each folder as `<base_dir>/<version>/`, all under one version, in order.

    `model` is the marker's content (`identity`). Without a version: the newest version that
    already holds this model in the last folder (a re-run), or in the others if it is newer
    than every version of the last folder (a publication that a killed process left half done:
    the folders that hold the model are kept, the others written); else `next_version` of all
    the bases, so one number never names two models and the last folder's versions only grow.

    Both or neither: when writing a folder fails, the folders this call wrote before it are
    removed again and the error is raised. Put last the folder its readers act on at once (TF
    Serving's): it is the commit. A process killed between two folders leaves the first ones
    in place, and the next publication of the model completes the version.

    Raises FileExistsError, before writing anything, when `<base_dir>/<version>` exists and
    holds another model, or is incomplete on a local disk: versions are never overwritten.
    """
    for folder in folders:
        tf.io.gfile.makedirs(folder.base_dir)
        _sweep(folder.base_dir)
    if version is None:
        version = _version_holding(folders, model)
    if version is None:
        version = next_version([f.base_dir for f in folders])
    plan = []
    for folder in folders:
        target = os.path.join(folder.base_dir, str(version))
        files = folder.content(version, model)
        done = False
        if tf.io.gfile.exists(target):
            ours = _holds(target, folder.marker, model)
            done = ours and tf.io.gfile.exists(os.path.join(target, files[-1][0]))
            if not (done or (ours and is_object_store(target))):
                raise FileExistsError(
                    f"{target} already exists and does not hold model {model}; "
                    "versions are never overwritten"
                )
        plan.append((folder, files, done))
    written: list[str] = []
    try:
        for folder, files, done in plan:
            if not done:
                written.append(_write(folder.base_dir, version, files))
    except BaseException:
        for target in written:
            _remove(target)
        raise
    return Publication(
        version,
        [os.path.join(f.base_dir, str(version)) for f in folders],
        [not done for _, _, done in plan],
    )


def _order(relative: str) -> tuple[int, str]:
    # The marker first (a partial version on an object store names its model), saved_model.pb
    # last (TF Serving loads a version once it is there), variables and assets before it.
    if relative == MARKER:
        return 0, relative
    if relative == "saved_model.pb":
        return 4, relative
    for rank, prefix in ((1, "variables/"), (2, "assets/")):
        if relative.startswith(prefix):
            return rank, relative
    return 3, relative


def saved_model_folder(model_dir: str, base_dir: str, warmup_file: str | None = None) -> Folder:
    """A SavedModel, its marker and TF Serving warmup requests (`assets.extra/`) as a version
    of `base_dir`; the marker comes first and saved_model.pb last.

    Raises FileNotFoundError when `model_dir` holds no saved_model.pb.
    """
    if not tf.io.gfile.exists(os.path.join(model_dir, "saved_model.pb")):
        raise FileNotFoundError(f"{model_dir}: no saved_model.pb to push")
    files: dict[str, Source] = {}
    for directory, _, names in tf.io.gfile.walk(model_dir):
        for name in names:
            path = os.path.join(directory, name)
            files[os.path.relpath(path, model_dir)] = path
    if warmup_file:
        files[os.path.join(WARMUP_DIR, WARMUP_FILE)] = warmup_file

    def content(version: int, model: dict) -> list[tuple[str, Source]]:
        marker = json.dumps({**model, "version": version}, indent=2).encode()
        return sorted({**files, MARKER: marker}.items(), key=lambda item: _order(item[0]))

    return Folder(base_dir, MARKER, content)


def push(model_dir: str, base_dir: str, warmup_file: str | None = None) -> tuple[int, str]:
    """Copies a SavedModel (plus TF Serving warmup requests) as a new version, even when a
    version holds it already; returns the version and its directory.

    Raises FileNotFoundError when `model_dir` holds no saved_model.pb.
    """
    folder = saved_model_folder(model_dir, base_dir, warmup_file)
    published = publish([folder], identity(model_dir, model_dir), version=next_version([base_dir]))
    return published.version, published.targets[0]
