"""The monitoring job: a window of request logs against what the served version was trained on.

`python3 scripts/dev.py monitor --logs DIR [--output-dir DIR] [--since ISO --until ISO]
[--model-version V]` (module `pipeline.monitor`, `main(argv)`):

1. reads the PredictionLog files in `--logs` (serving/request_log.py's TFRecord files) whose
   LogMetadata timestamp lies in [since, until), and turns them into raw feature rows and
   served probabilities (serving/monitor.py);
2. finds the served version through ML Metadata (pipeline/lineage.py, the store at
   `<output-dir>/metadata/<pipeline>.sqlite`): its training months' StatisticsGen outputs,
   pooled into the training statistics (Transform runs with disable_statistics, so there is no
   pre_transform_stats; StatisticsGen has profiled every month already, locally and on
   Kubeflow alike, so nothing is re-read), and its Evaluator output (the CalibrationPlot's
   histogram of predictions on the evaluation months);
3. validates the window's TFDV statistics against the curated schema (transforms/schema.py,
   SERVING environment), the training statistics (skew, and the missing fraction), the
   previous window's statistics (drift: the latest window under `<output-dir>/monitor/`
   that ended by this one's start, whichever version served it), and the evaluation-time
   predictions (prediction drift);
4. writes `<output-dir>/monitor/<window>--v<version>/monitor.json` and `statistics.pb`, and
   prints a table.

Exit codes: 0 healthy, 3 alert (a check failed: page on it), 2 bad input (no logs in the
window, logs of several versions without --model-version, a version or store not found), with
one line on stderr naming what and where.

The curated schema shipped with this code supplies the thresholds (not the schema artifact of
the served version's run, which predates any threshold change); monitor.json records both.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import pathlib
import sys

EXIT_HEALTHY, EXIT_BAD_INPUT, EXIT_ALERT = 0, 2, 3
MONITOR_DIR = "monitor"
REPORT_FILE = "monitor.json"
STATISTICS_FILE = "statistics.pb"
_STAMP = "%Y%m%dT%H%M%SZ"


class InputError(Exception):
    """Bad input for the monitor (message: what and where); main() exits with 2."""


def parse_time(text: str) -> datetime.datetime:
    """An ISO 8601 date or time (`2013-11-01`, `2013-11-01T06:00`, `...Z`, `...+01:00`) as an
    aware UTC datetime; naive times are UTC. Raises argparse.ArgumentTypeError."""
    try:
        moment = datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))
    except ValueError as error:
        raise argparse.ArgumentTypeError(f"not an ISO date/time: {text!r}") from error
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=datetime.UTC)
    return moment.astimezone(datetime.UTC)


def _stamp(seconds: float) -> str:
    return datetime.datetime.fromtimestamp(seconds, datetime.UTC).strftime(_STAMP)


def read_logs(log_dir: str, since: datetime.datetime | None, until: datetime.datetime | None):
    """(PredictionLogs with since <= timestamp < until, files read, files that could not be
    read whole: "<path>: <error>"; the records before a corrupt or truncated record are kept).
    Raises InputError when the folder holds no finished log file, none that can be read, or
    none of its records fall in the window."""
    from serving import request_log

    if not os.path.isdir(log_dir) and "://" not in log_dir:
        raise InputError(f"--logs {log_dir}: no such folder")
    files = request_log.log_files(log_dir)
    if not files:
        raise InputError(
            f"no PredictionLog files ({request_log.DEFAULT_PREFIX}-*"
            f"{request_log.FILE_SUFFIX}) in {log_dir}"
        )
    records, unreadable = [], []
    for path in files:
        read, error = request_log.read_file(path)
        records += read
        if error is not None:
            unreadable.append(f"{path}: {error}")
    if unreadable and not records:
        raise InputError("no readable PredictionLog file: " + "; ".join(unreadable))
    low = since.timestamp() if since else float("-inf")
    high = until.timestamp() if until else float("inf")
    kept = [r for r in records if low <= r.log_metadata.timestamp_secs < high]
    if not kept:
        low_text = since.isoformat() if since else "-inf"
        window = f"[{low_text}, {until.isoformat() if until else 'inf'})"
        raise InputError(
            f"no PredictionLog in {log_dir} within {window} ({len(records)} record(s) in "
            f"{len(files)} file(s), all outside)"
        )
    return kept, files, unreadable


def choose_version(records, wanted: str | None) -> tuple[str, list]:
    """(version, its records): `wanted`, or the only version in the LogMetadata. Raises
    InputError for a wanted version the logs do not hold, or several versions without one."""
    by_version: dict[str, list] = {}
    for record in records:
        by_version.setdefault(str(record.log_metadata.model_spec.version.value), []).append(record)
    held = ", ".join(f"{v} ({len(r)} requests)" for v, r in sorted(by_version.items()))
    if wanted is not None:
        if wanted not in by_version:
            raise InputError(
                f"no request served by model version {wanted} in the logs (held: {held})"
            )
        return wanted, by_version[wanted]
    if len(by_version) > 1:
        raise InputError(
            f"the logs hold several model versions: {held}; choose one with --model-version"
        )
    ((version, kept),) = by_version.items()
    return version, kept


def training_statistics(result: dict):
    """Pooled statistics of the training months of a lineage (see pipeline.lineage.lineage),
    from their StatisticsGen outputs. Raises InputError when a training month has none."""
    import tensorflow_data_validation as tfdv

    from serving.monitor import merge_statistics

    months = [m for m in result["months"] if m["role"] == "training"]
    if not months:
        raise InputError(f"{result['kind']}: ML Metadata records no training months")
    stats = []
    for month in months:
        import tensorflow as tf

        pattern = os.path.join(month.get("statistics_uri") or "", "*", "FeatureStats.pb")
        files = sorted(tf.io.gfile.glob(pattern))  # local or gs:// (a Kubeflow run)
        if not files:
            raise InputError(
                f"{result['kind']}: no StatisticsGen output for training month {month['month']} "
                f"(looked in {month.get('statistics_uri')})"
            )
        stats.append(tfdv.load_stats_binary(files[0]))
    return merge_statistics(stats), [m["month"] for m in months]


def evaluation_histogram(result: dict):
    """(counts per probability bucket at evaluation time, None) or (None, why not)."""
    from serving.monitor import calibration_histogram

    evaluation = result.get("evaluation") or {}
    uri = evaluation.get("uri")
    if not uri:
        return None, "no Evaluator output in the version's lineage"
    import tensorflow_model_analysis as tfma

    try:
        return calibration_histogram(tfma.load_plots(uri)), None
    except (LookupError, OSError) as error:
        return None, f"{error} ({uri})"


def previous_statistics(monitor_root: pathlib.Path, start: str):
    """(statistics, folder name) of the latest earlier window under `monitor_root` that ended
    by `start` (windows must not overlap: the same requests on both sides would hide drift),
    of whichever version served it (drift is the traffic's, not the model's), or (None,
    None). Folder names are `<start>--<end>--v<version>` in UTC (`_STAMP`), so they compare
    as text."""
    import tensorflow_data_validation as tfdv

    earlier = sorted(
        (p.parent.name.split("--")[1], p.parent.name)
        for p in monitor_root.glob(f"*--*/{STATISTICS_FILE}")
        if p.parent.name.split("--")[1] <= start and p.parent.name.split("--")[0] < start
    )
    if not earlier:
        return None, None
    name = earlier[-1][1]
    return tfdv.load_stats_binary(str(monitor_root / name / STATISTICS_FILE)), name


def monitor(
    log_dir: str,
    output_dir: pathlib.Path,
    since: datetime.datetime | None = None,
    until: datetime.datetime | None = None,
    model_version: str | None = None,
) -> dict:
    """Runs the checks (see the module docstring) and writes monitor.json and statistics.pb
    under `<output_dir>/monitor/<window>--v<version>/`; returns the report (the JSON's
    content). Window name: `<start>--<end>` (UTC, YYYYMMDDTHHMMSSZ), from --since/--until or
    else the logs' first and last timestamps. Raises InputError (bad input) and
    FileNotFoundError / LookupError from the lineage (no store, not a store, unknown
    version)."""
    from pipeline.config import local_config
    from pipeline.lineage import lineage
    from serving import monitor as M
    from transforms import schema as S

    records, files, unreadable = read_logs(log_dir, since, until)
    version, records = choose_version(records, model_version)
    found = M.traffic(records)
    if not found.rows:
        raise InputError(
            f"none of the {len(records)} PredictionLog(s) of version {version} in {log_dir} "
            f"holds a readable request (unreadable: {dict(found.unreadable)})"
        )
    config = local_config(output_dir)
    result = lineage(config.metadata_path, version)
    training, training_months = training_statistics(result)
    start = since.timestamp() if since else found.first_timestamp
    end = until.timestamp() if until else found.last_timestamp
    window = f"{_stamp(start)}--{_stamp(end)}"
    monitor_root = output_dir.resolve() / MONITOR_DIR
    folder = monitor_root / f"{window}--v{version}"

    schema = S.load()
    serving = M.statistics(found.columns)
    previous, previous_window = previous_statistics(monitor_root, _stamp(start))
    checks = M.check_schema(serving, schema)
    checks += M.compare(serving, training, schema, M.SKEW)
    checks += M.compare_missing(serving, training)
    notes = [f"unreadable log file, records after the fault skipped: {u}" for u in unreadable]
    if previous is not None:
        checks += M.compare(serving, previous, schema, M.DRIFT)
    else:
        notes.append("drift: no earlier window under " + str(monitor_root))
    evaluated, why = evaluation_histogram(result)
    if evaluated is not None:
        checks.append(M.compare_predictions(found.probabilities, evaluated))
    else:
        notes.append(f"prediction drift: {why}")
    if M.rows_of(training) < M.MIN_ROWS:
        notes.append(
            f"training statistics hold only {M.rows_of(training)} rows: skew distances are "
            "noisier than at full size"
        )
    if found.rows < M.MIN_ROWS:
        notes.append(
            f"only {found.rows} rows (< {M.MIN_ROWS}): distribution checks are not judged; "
            "widen the window or raise the sampling rate"
        )
    alerts = [c for c in checks if c.verdict == M.ALERT]
    report = {
        "status": "alert" if alerts else "healthy",
        "alerts": sorted({c.feature for c in alerts}),
        "model": {
            "name": config.pipeline_name,
            "version": version,
            "training_months": training_months,
            "evaluation_months": (result.get("evaluation") or {}).get("months", []),
            "evaluation_uri": (result.get("evaluation") or {}).get("uri"),
            "schema_of_run": (result.get("schema") or {}).get("uri"),
        },
        "window": {
            "name": window,
            "since": since.isoformat() if since else None,
            "until": until.isoformat() if until else None,
            "first_request": _iso(found.first_timestamp),
            "last_request": _iso(found.last_timestamp),
            "previous": previous_window,
        },
        "counts": found.counts(),
        "logs": {"dir": log_dir, "files": len(files), "unreadable_files": len(unreadable)},
        "thresholds": {
            "schema": str(S.SCHEMA_FILE),
            "min_rows": M.MIN_ROWS,
            "missing_fraction_change": M.MISSING_SKEW_THRESHOLD,
            "prediction_jensen_shannon": M.PREDICTION_DRIFT_THRESHOLD,
        },
        "notes": notes,
        "checks": [c.as_dict() for c in checks],
    }
    folder.mkdir(parents=True, exist_ok=True)
    (folder / STATISTICS_FILE).write_bytes(serving.SerializeToString())
    (folder / REPORT_FILE).write_text(json.dumps(report, indent=2) + "\n")
    report["report_file"] = str(folder / REPORT_FILE)
    return report


def _iso(seconds: int | None) -> str | None:
    if seconds is None:
        return None
    return datetime.datetime.fromtimestamp(seconds, datetime.UTC).isoformat()


def _cell(check: dict | None) -> str:
    if check is None:
        return "-"
    if check["value"] is None:
        return check["verdict"].upper()
    mark = {"ok": "ok", "alert": "ALERT", "too_few_rows": "few rows"}[check["verdict"]]
    return f"{check['value']:.3f}/{check['threshold']:g} {mark}"


def format_report(report: dict) -> str:
    """The report as a console table: one line per feature with a check (schema, skew,
    missing, drift), then the prediction check, the notes and the verdict."""
    model, window, counts = report["model"], report["window"], report["counts"]
    rates = counts["sampled"]["sampling_rates"]
    lines = [
        f"Monitor {model['name']} version {model['version']}, window {window['name']}",
        f"  {counts['requests']} requests, {counts['rows']} rows, "
        f"{counts['unreadable']} unreadable; "
        f"sampling rate {', '.join(f'{r:g}' for r in rates) or 'unknown'}; training months "
        f"{', '.join(model['training_months'])}",
    ]
    by_feature: dict[str, dict[str, dict]] = {}
    for check in report["checks"]:
        by_feature.setdefault(check["feature"], {})[check["kind"]] = check
    header = f"  {'feature':<20} {'schema':<8} {'skew':<20} {'missing':<20} {'drift':<20}"
    lines.append(header)
    for feature, kinds in by_feature.items():
        if "prediction" in kinds:
            continue
        schema = kinds.get("schema")
        lines.append(
            f"  {feature:<20} {'ALERT' if schema else 'ok':<8} {_cell(kinds.get('skew')):<20} "
            f"{_cell(kinds.get('missing')):<20} {_cell(kinds.get('drift')):<20}"
        )
    for check in report["checks"]:
        if check["kind"] == "prediction":
            lines.append(f"  prediction drift: {_cell(check)}  {check['detail']}")
    for check in report["checks"]:
        if check["verdict"] == "alert":
            lines.append(f"  ALERT {check['feature']} ({check['kind']}): {check['detail']}")
    lines += [f"  note: {n}" for n in report["notes"]]
    lines.append(
        f"{report['status'].upper()}: "
        + (", ".join(report["alerts"]) if report["alerts"] else "no feature alerts")
        + f" ({report.get('report_file', REPORT_FILE)})"
    )
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """`monitor --logs DIR [--output-dir DIR] [--since ISO] [--until ISO] [--model-version V]
    [--json]`: runs `monitor`, prints the table (or the JSON) and returns 0 (healthy), 3 (an
    alert) or 2 (bad input, one line on stderr naming what and where)."""
    from pipeline import console

    console.quiet_libraries()
    parser = argparse.ArgumentParser(
        prog="monitor",
        description="Skew, drift, schema and prediction checks of logged requests "
        "(PredictionLog files) against the served version's training data.",
    )
    parser.add_argument("--logs", required=True, help="folder of PredictionLog TFRecord files")
    parser.add_argument(
        "--output-dir", default="output", help="the run's output folder (holds metadata/)"
    )
    parser.add_argument("--since", type=parse_time, help="window start (ISO, inclusive)")
    parser.add_argument("--until", type=parse_time, help="window end (ISO, exclusive)")
    parser.add_argument("--model-version", help="served version (default: the logs' only one)")
    parser.add_argument("--json", action="store_true", help="print monitor.json instead")
    args = parser.parse_args(argv)
    if args.since and args.until and args.since >= args.until:
        print(f"monitor: --since {args.since} is not before --until {args.until}", file=sys.stderr)
        return EXIT_BAD_INPUT
    try:
        report = monitor(
            args.logs, pathlib.Path(args.output_dir), args.since, args.until, args.model_version
        )
    except InputError as error:
        print(f"monitor: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except FileNotFoundError as error:
        print(
            f"monitor: {error} (looked under --output-dir {args.output_dir}; point it at the "
            "pipeline run's output folder)",
            file=sys.stderr,
        )
        return EXIT_BAD_INPUT
    except LookupError as error:
        print(f"monitor: {error}", file=sys.stderr)
        return EXIT_BAD_INPUT
    print(json.dumps(report, indent=2) if args.json else format_report(report))
    return EXIT_ALERT if report["status"] == "alert" else EXIT_HEALTHY


if __name__ == "__main__":
    sys.exit(main())
