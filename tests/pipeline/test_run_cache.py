"""The run-level cache reuses a run only when nothing that makes its results changed."""

import dataclasses
import json
import os
import pathlib
import shutil

import pytest

from pipeline import run_cache
from pipeline.config import Baseline, local_config
from pipeline.months import Month

pytestmark = pytest.mark.unit


@pytest.fixture
def config(tmp_path):
    config = local_config(tmp_path, eval_months=(Month(2013, 3),), train_window=2)
    for month in config.months:
        drop = pathlib.Path(config.landing_root) / str(month)
        drop.mkdir(parents=True)
        (drop / "flights.csv").write_text(f"year,month\n2013,{month.month}\n")
    store = pathlib.Path(config.metadata_path)
    store.parent.mkdir(parents=True)
    store.write_bytes(b"store")
    return config


def _succeeded(config, tmp_path, **fields) -> dict:
    """Writes the files a succeeded run leaves and records it; returns its summary."""
    run_dir = tmp_path / "runs" / "run-1"
    run_dir.mkdir(parents=True)
    report = run_dir / "report.html"
    report.write_text("<html>")
    pushed = pathlib.Path(config.serving_model_dir) / "1700000000"
    pushed.mkdir(parents=True)
    summary = {
        "run_id": "2026-11-30T10:00:00.000000",
        "status": "succeeded",
        "components": [{"component": "Trainer", "state": "ran", "seconds": 3.0}],
        "summary_file": str(run_dir / "summary.json"),
        "report_file": str(report),
        "pushed_destination": str(pushed),
        **fields,
    }
    pathlib.Path(summary["summary_file"]).write_text(json.dumps(summary))
    run_cache.record(config, run_cache.fingerprint(config), summary)
    return summary


def _reusable(config):
    return run_cache.reusable(config, run_cache.fingerprint(config))


def test_an_unchanged_run_is_reused_and_a_fresh_store_is_not(config, tmp_path):
    assert _reusable(config) is None  # nothing recorded yet
    summary = _succeeded(config, tmp_path)
    assert _reusable(config) == summary


def test_a_changed_drop_file_or_a_new_one_is_not_reused(config, tmp_path):
    _succeeded(config, tmp_path)
    flights = pathlib.Path(config.landing_root) / "2013-02" / "flights.csv"
    original = flights.read_bytes()
    stat = flights.stat()
    flights.write_bytes(original.replace(b"2013", b"2012"))
    os.utime(flights, ns=(stat.st_atime_ns, stat.st_mtime_ns))  # same size and time
    assert _reusable(config) is None
    flights.write_bytes(original)
    os.utime(flights, ns=(stat.st_atime_ns, stat.st_mtime_ns))
    assert _reusable(config) is not None
    (flights.parent / "weather.csv").write_text("origin\nJFK\n")
    assert _reusable(config) is None


def test_a_drop_delivered_again_with_the_same_bytes_is_not_reused(config, tmp_path):
    # TFX's ExampleGen ingests it again as a newer version (size and modification time).
    _succeeded(config, tmp_path)
    flights = pathlib.Path(config.landing_root) / "2013-03" / "flights.csv"
    stat = flights.stat()
    os.utime(flights, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000_000))
    assert _reusable(config) is None


def test_the_weather_of_the_month_before_the_first_counts(config, tmp_path):
    _succeeded(config, tmp_path)
    before = pathlib.Path(config.landing_root) / str(config.months[0].shift(-1))
    before.mkdir()
    (before / "weather.csv").write_text("origin\nJFK\n")
    assert _reusable(config) is None


def test_other_options_or_caching_off_are_not_reused(config, tmp_path):
    _succeeded(config, tmp_path)
    assert run_cache.reusable(config, run_cache.fingerprint(config)) is not None
    for changed in (
        dataclasses.replace(config, min_eval_auc=0.71),
        dataclasses.replace(config, rows_per_month=100),
        dataclasses.replace(config, enable_cache=False),
        # TFX's latest-blessed baseline makes a re-run compare the candidate with itself.
        dataclasses.replace(config, baseline=Baseline.LATEST_BLESSED),
    ):
        assert run_cache.reusable(changed, run_cache.fingerprint(changed)) is None


def test_a_changed_code_file_is_not_reused(config, tmp_path, monkeypatch):
    code = tmp_path / "code"
    (code / "pipeline").mkdir(parents=True)
    module = code / "pipeline" / "step.py"
    module.write_text("VALUE = 1\n")
    monkeypatch.setattr(run_cache, "PROJECT_ROOT", code)
    _succeeded(config, tmp_path)
    assert _reusable(config) is not None
    module.write_text("VALUE = 2\n")
    assert _reusable(config) is None


def test_a_store_changed_since_is_not_reused(config, tmp_path):
    _succeeded(config, tmp_path)
    store = pathlib.Path(config.metadata_path)
    store.write_bytes(b"store, another run's executions")
    assert _reusable(config) is None


def test_a_store_touched_to_the_same_size_is_not_reused(config, tmp_path):
    _succeeded(config, tmp_path)
    store = pathlib.Path(config.metadata_path)
    stat = store.stat()
    os.utime(store, ns=(stat.st_atime_ns, stat.st_mtime_ns + 1_000_000))
    assert _reusable(config) is None


@pytest.mark.parametrize("gone", ["pushed_destination", "report_file", "summary_file"])
def test_a_run_whose_files_are_gone_is_not_reused(config, tmp_path, gone):
    summary = _succeeded(config, tmp_path)
    path = pathlib.Path(summary[gone])
    if path.is_dir():
        path.rmdir()
    else:
        path.unlink()
    assert _reusable(config) is None


def test_a_failed_run_removes_the_record(config, tmp_path):
    summary = _succeeded(config, tmp_path)
    run_cache.record(config, run_cache.fingerprint(config), {**summary, "status": "failed"})
    assert not run_cache.record_path(config).exists()
    assert _reusable(config) is None


@pytest.mark.parametrize("text", ["{not json", "null", "[]", '{"summary_file": 3}'])
def test_a_corrupt_record_is_not_reused(config, tmp_path, text):
    _succeeded(config, tmp_path)
    run_cache.record_path(config).write_text(text)
    assert _reusable(config) is None


def _distribution(directory: pathlib.Path, name: str, version: str) -> None:
    info = directory / f"{name}-{version}.dist-info"
    info.mkdir(parents=True)
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: {version}\n")


@pytest.fixture
def site_packages(tmp_path, monkeypatch) -> pathlib.Path:
    """A site-packages folder of the interpreter, on sys.path."""
    folder = tmp_path / "site-packages"
    folder.mkdir()
    monkeypatch.setattr(run_cache.site, "getsitepackages", lambda: [str(folder)])
    monkeypatch.setattr(run_cache.site, "ENABLE_USER_SITE", False)
    monkeypatch.syspath_prepend(str(folder))
    return folder


def test_a_changed_installed_library_is_not_reused(config, tmp_path, site_packages):
    _distribution(site_packages, "some_library", "1.0")
    assert "some_library==1.0" in run_cache.installed_distributions()
    _succeeded(config, tmp_path)
    assert _reusable(config) is not None
    shutil.rmtree(site_packages / "some_library-1.0.dist-info")  # pip install -U
    _distribution(site_packages, "some_library", "1.1")
    assert _reusable(config) is None


def test_a_library_on_pythonpath_counts(config, tmp_path, site_packages, monkeypatch):
    _succeeded(config, tmp_path)
    target = tmp_path / "target"  # pip install --target; PYTHONPATH=target
    _distribution(target, "newer_library", "3.0")
    monkeypatch.syspath_prepend(str(target))
    assert "newer_library==3.0" in run_cache.installed_distributions()
    assert _reusable(config) is None


def test_what_imports_add_to_sys_path_is_not_an_installed_library(
    config, tmp_path, site_packages, monkeypatch
):
    """Importing TFX puts site-packages/setuptools/_vendor on sys.path: a second run in the
    same process (local.run twice) must fingerprint the same inputs."""
    _succeeded(config, tmp_path)
    vendored = site_packages / "setuptools" / "_vendor"
    _distribution(vendored, "vendored_library", "2.0")
    monkeypatch.syspath_prepend(str(vendored))
    assert "vendored_library==2.0" not in run_cache.installed_distributions()
    assert _reusable(config) is not None
