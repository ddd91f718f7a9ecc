"""One local run: deliver the months' drops, run the pipeline with LocalDagRunner, report."""

from __future__ import annotations

import contextlib
import datetime
import json
import logging
import pathlib
import re
import time

from pipeline import console, data, landing, run_cache
from pipeline.config import PipelineConfig
from pipeline.lock import exclusive

_PROGRESS = re.compile(r"Component (\S+) is (running|finished)\.|A cached execution \d+ is used")


class _ProgressHandler(logging.Handler):
    """Turns LocalDagRunner's INFO log lines into one progress line per component, with a
    live status line while it runs (console.start_step)."""

    def __init__(self):
        super().__init__(logging.INFO)
        self._started, self._cached = {}, False

    def emit(self, record: logging.LogRecord) -> None:
        match = _PROGRESS.match(record.getMessage())
        if not match:
            return
        node, event = match.groups()
        if node is None:
            self._cached = True
        elif event == "running":
            self._started[node], self._cached = time.monotonic(), False
            console.start_step(node)
        else:
            seconds = time.monotonic() - self._started.pop(node, time.monotonic())
            how = "cached" if self._cached else "done"
            console.end_step()
            console.say(f"[pipeline] {node} {how} in {seconds:.1f} s")


@contextlib.contextmanager
def _progress(verbose: bool):
    """Shows component progress; the libraries' own logs go to the console's log file when
    it captures them (pipeline/console.py), to the terminal when `verbose`, else only their
    errors.

    Verbosity is set through absl's flag, not the logger: libraries that silence absl
    temporarily restore the flag's value, which must stay INFO for the progress lines.
    """
    from absl import logging as absl_logging

    handler = _ProgressHandler()
    quieted = (
        []
        if verbose or console.log_path() is not None
        else [
            (h, h.level)
            for h in (*logging.getLogger().handlers, *logging.getLogger("tensorflow").handlers)
        ]
    )
    for h, _ in quieted:
        h.setLevel(max(h.level, logging.ERROR))
    old_verbosity = absl_logging.get_verbosity()
    absl_logging.set_verbosity(absl_logging.INFO)
    logging.getLogger("absl").addHandler(handler)
    try:
        yield
    finally:
        logging.getLogger("absl").removeHandler(handler)
        absl_logging.set_verbosity(old_verbosity)
        for h, level in quieted:
            h.setLevel(level)


def run(
    config: PipelineConfig, runs_dir: pathlib.Path, verbose: bool = False, reuse: bool = True
) -> dict:
    """Runs the pipeline once and returns its summary, also written to the run's folder with
    the run's report (`report.html`, pipeline/report.py; `report_file` in the summary, or
    `report_error` when it could not be drawn).

    With `reuse` (and caching on), a run whose inputs are unchanged since the last succeeded
    run does not start TFX: that run's results stand (pipeline/run_cache.py) and the summary
    says so (`reused_run`, every component "cached", the earlier run's report).

    A component failure does not raise: it is recorded in the summary (status "failed",
    the error message) so the caller can report it and exit non-zero. Raises RunLocked when
    another run uses the same ML Metadata store (pipeline/lock.py).
    """
    with exclusive(pathlib.Path(config.metadata_path).with_suffix(".lock")):
        return _run(config, runs_dir, verbose, reuse)


def _run(config: PipelineConfig, runs_dir: pathlib.Path, verbose: bool, reuse: bool) -> dict:
    started = time.monotonic()
    started_at = datetime.datetime.now()
    try:
        written = landing.deliver(pathlib.Path(config.landing_root), config.months)
    except data.DataError as error:
        raise data.DataError(f"{error}; the run is {config.data_span}") from None
    console.say(
        f"[landing] {config.landing_root}: "
        + (f"delivered {', '.join(map(str, written))}" if written else "every month present")
    )
    inputs = run_cache.fingerprint(config)
    previous = run_cache.reusable(config, inputs) if reuse else None
    if previous is not None:
        console.say(
            f"[pipeline] nothing changed since the run {previous['run_id']} (code, "
            "configuration, libraries, drops and ML Metadata store as it left them): its "
            "results stand; --no-cache re-executes every component"
        )
        result = _reused(previous, started_at)
    else:
        result = _execute(config, started_at, verbose)
    result.update(
        wall_seconds=round(time.monotonic() - started, 1),
        finished_at=datetime.datetime.now().isoformat(timespec="seconds"),
    )

    run_dir = runs_dir / re.sub(r"[^0-9A-Za-z_.-]", "-", result["run_id"])
    run_dir.mkdir(parents=True, exist_ok=True)
    result["summary_file"] = str(run_dir / "summary.json")
    if previous is None:
        from pipeline import report  # imports TensorFlow

        drawing = time.monotonic()
        console.start_step("report")
        try:
            result["report_file"] = str(report.write_report(result, config.metadata_path, run_dir))
        except Exception as exc:  # noqa: BLE001 -- a report that cannot be drawn loses no run
            result["report_error"] = f"{type(exc).__name__}: {exc}"
        console.end_step()
        console.say(f"[pipeline] report done in {time.monotonic() - drawing:.1f} s")
    pathlib.Path(result["summary_file"]).write_text(json.dumps(result, indent=2))
    if previous is None:
        run_cache.record(config, inputs, result)
    return result


def _reused(previous: dict, started_at: datetime.datetime) -> dict:
    """The summary of a run that reuses `previous` (an executed run's summary) whole."""
    result = dict(previous)
    result.update(
        run_id=started_at.isoformat(timespec="microseconds"),
        reused_run=previous["run_id"],
        components=[{**c, "state": "cached", "seconds": 0.0} for c in previous["components"]],
        all_cached=True,
    )
    return result


def _execute(config: PipelineConfig, started_at: datetime.datetime, verbose: bool) -> dict:
    """Runs the pipeline with LocalDagRunner; its summary from ML Metadata (no file written)."""
    from tfx import v1 as tfx

    from pipeline import summary
    from pipeline.pipeline import create_pipeline

    error = None
    with _progress(verbose):
        try:
            tfx.orchestration.LocalDagRunner().run(create_pipeline(config))
        except Exception as exc:  # noqa: BLE001 -- any component's failure: summary, exit 1
            error = f"{type(exc).__name__}: {exc}"
            if "database" in str(exc):  # SQLite's messages name no file
                error += f" (ML Metadata store: {config.metadata_path})"
        try:
            result = summary.summarize(
                config.metadata_path, config.pipeline_name, since=started_at.timestamp()
            )
        except Exception:  # noqa: BLE001 -- no record of this run (none, or a store that
            # cannot be read): report the error with no components, never another run's
            result = {
                "pipeline": config.pipeline_name,
                "run_id": started_at.isoformat(timespec="seconds"),
                "components": [],
            }
    result.update(status="failed" if error else "succeeded", error=error)
    return result
