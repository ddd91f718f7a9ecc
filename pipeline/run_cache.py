"""Run-level cache: a local run whose inputs are all unchanged since the last run that
succeeded reuses that run's results without starting TFX.

TFX's own cache (`enable_cache`) already re-executes nothing in such a run, but reaching that
verdict costs ~10 s of imports (TensorFlow, TFX, Beam) and a cache lookup per component.
This check needs files only. The inputs that make a run's results are fingerprinted:

- the configuration (`PipelineConfig`: every field is typed, its repr says them all);
- the code: every file of the project's packages and `local_runner.py`;
- the installed libraries: the name and version of every distribution on sys.path, except
  packages' own vendored copies inside site-packages (importing TFX puts setuptools' there,
  which would make a second run in the same process look different);
- the months' drops in the landing zone, and the drop of the month before the first (its
  weather is read for the first days): each file's size and modification time (what TFX's
  ExampleGen fingerprints: a drop delivered again is ingested again as a newer version) and
  its bytes;
- the ML Metadata store: its size and modification time as the run left it. Any other run on
  the store (other options, a failed run, a replayed month) changes it, so the next run
  takes TFX's path again, where TFX's per-component cache decides.

Nothing is reused unless the recorded run succeeded and the files it points users to (its
summary, report and pushed model) still exist, and only with the baseline that excludes the
candidate (Baseline.EXCLUDE_CANDIDATE): with TFX's LatestBlessedModelStrategy a re-run compares
the candidate with itself, so it does not reproduce the run. `--no-cache` (enable_cache False)
always runs.
The record is a JSON file beside the store (`<store>.run-cache.json`), written when a run
succeeds and never read by TFX.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import pathlib
import site
import sys

from pipeline.config import Baseline, PipelineConfig

PROJECT_ROOT = pathlib.Path(__file__).resolve().parent.parent
CODE = ("pipeline", "models", "transforms", "serving", "mobile", "local_runner.py")
"""What of PROJECT_ROOT is the run's code (setup.py packages these)."""


def record_path(config: PipelineConfig) -> pathlib.Path:
    """`<metadata_path minus suffix>.run-cache.json`: the record of the last succeeded run."""
    return pathlib.Path(config.metadata_path).with_suffix(".run-cache.json")


def fingerprint(config: PipelineConfig) -> str:
    """SHA-256 (hex) of the run's inputs listed in the module docstring, the store excepted.

    Reads every drop file of `config.months` under `config.landing_root` (a local path) and
    every code file; ~0.2 s for the full year."""
    digest = hashlib.sha256()
    digest.update(repr(config).encode())
    for relative, path in _files(PROJECT_ROOT, CODE):
        digest.update(f"code {relative}\n".encode())
        digest.update(_file_digest(path))
    digest.update("\n".join(installed_distributions()).encode())
    months = [config.months[0].shift(-1), *config.months]
    for relative, path in _files(pathlib.Path(config.landing_root), [str(m) for m in months]):
        digest.update(f"drop {relative}\n".encode())
        digest.update(_file_digest(path, with_stat=True))
    return digest.hexdigest()


def installed_distributions() -> list[str]:
    """`name==version` of every distribution on sys.path (site-packages, PYTHONPATH, .pth
    entries), sorted, except in folders inside a site-packages folder: those are packages'
    own copies that importing them puts on sys.path (TFX's import adds setuptools/_vendor:
    autocommand, jaraco.*, ...), not installs."""
    sites = [pathlib.PurePath(s) for s in site.getsitepackages()]
    if site.ENABLE_USER_SITE:
        sites.append(pathlib.PurePath(site.getusersitepackages()))

    def vendored(entry: str) -> bool:
        path = pathlib.PurePath(entry)
        return any(path != s and path.is_relative_to(s) for s in sites)

    paths = [entry for entry in sys.path if not vendored(entry)]
    return sorted(
        f"{d.metadata['Name']}=={d.version}" for d in importlib.metadata.distributions(path=paths)
    )


def reusable(config: PipelineConfig, inputs: str) -> dict | None:
    """The summary of the last succeeded run if a run with `inputs` (fingerprint(config))
    would reproduce it, else None: caching is off, no run was recorded, any input changed, the
    store changed since, or a file the summary names (summary, report, pushed model) is gone."""
    if (
        not config.enable_cache
        or config.metadata_path is None
        or config.baseline is not Baseline.EXCLUDE_CANDIDATE
    ):
        return None
    try:
        record = json.loads(record_path(config).read_text())
        summary = json.loads(pathlib.Path(record["summary_file"]).read_text())
        summary.get("status")
    except (OSError, ValueError, KeyError, TypeError, AttributeError):  # none, or not ours
        return None
    if record.get("store") != _store_state(config) or record.get("fingerprint") != inputs:
        return None
    named = [summary.get("summary_file"), summary.get("report_file")]
    if summary.get("pushed_destination"):
        named.append(summary["pushed_destination"])
    if summary.get("status") != "succeeded" or not all(p and os.path.exists(p) for p in named):
        return None
    return summary


def record(config: PipelineConfig, inputs: str, summary: dict) -> None:
    """Records a finished run that started from `inputs` (fingerprint(config)): a succeeded
    one for reuse by the next run with the same inputs; a failed one removes the record."""
    if config.metadata_path is None:
        return
    path = record_path(config)
    if summary.get("status") != "succeeded":
        path.unlink(missing_ok=True)
        return
    state = {
        "fingerprint": inputs,
        "store": _store_state(config),
        "run_id": summary["run_id"],
        "summary_file": summary["summary_file"],
    }
    temporary = path.with_name(f".{path.name}.tmp")
    temporary.write_text(json.dumps(state, indent=2))
    temporary.replace(path)


def _store_state(config: PipelineConfig) -> list[int] | None:
    try:
        stat = os.stat(config.metadata_path)
    except OSError:
        return None
    return [stat.st_size, stat.st_mtime_ns]


def _files(root: pathlib.Path, names) -> list[tuple[str, pathlib.Path]]:
    """(path relative to root, path) of every file under root/name for each name, sorted;
    Python's bytecode caches excepted."""
    found = []
    for name in names:
        top = root / name
        paths = [top] if top.is_file() else top.rglob("*")
        for path in paths:
            if path.is_file() and "__pycache__" not in path.parts:
                found.append((path.relative_to(root).as_posix(), path))
    return sorted(found)


def _file_digest(path: pathlib.Path, with_stat: bool = False) -> bytes:
    """SHA-256 of the file's bytes, after its size and modification time `with_stat`;
    a file gone since it was listed (an editor's swap file) digests as such.
    (hashlib.file_digest is 3.11+; the pipeline image runs 3.10.)"""
    digest = hashlib.sha256()
    try:
        if with_stat:
            stat = path.stat()
            digest.update(f"{stat.st_size} {stat.st_mtime_ns}\n".encode())
        with path.open("rb") as file:
            while chunk := file.read(1 << 20):
                digest.update(chunk)
    except FileNotFoundError:
        return b"gone"
    return digest.digest()
