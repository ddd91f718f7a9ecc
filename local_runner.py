"""Runs the flight-delay pipeline on this machine: LocalDagRunner, SQLite MLMD, Beam DirectRunner.

    python local_runner.py                    # full year, with tuning
    python local_runner.py --fast             # no Tuner, fewer epochs
    python local_runner.py --rows-per-month 500 --min-eval-auc 0.6   # a quick look on a sample
    python local_runner.py --eval-month 2013-07 --train-window 6      # another window
    python local_runner.py replay --first-month 2013-03 --rows-per-month 2000 --fast

Paths, orchestrator and Beam settings only; the pipeline itself lives in pipeline/.
"""

from __future__ import annotations

import argparse
import datetime
import os
import pathlib
import sys

BEAM_ARGS = (
    "--direct_running_mode=in_memory",
    "--direct_num_workers=1",
    # Names the code's package for Beam. Without a dependency flag TFX packs its own install
    # into a fresh sdist for every Beam component (tfx/utils/dependency_utils.py,
    # make_beam_dependency_flags): ~1 s and a 51 MB copy of tfx left under /tmp each time.
    # The DirectRunner stages nothing; a staging runner would install this project.
    f"--setup_file={pathlib.Path(__file__).resolve().parent / 'setup.py'}",
)


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be a positive whole number, got {text}")
    return value


def _fraction(text: str) -> float:
    value = float(text)
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"must be within [0, 1], got {text}")
    return value


def _month(text: str):
    from pipeline.months import Month

    try:
        return Month.parse(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def parse_args(argv: list[str]) -> argparse.Namespace:
    """The run's options; `replay` as the first argument adds the replay's months."""
    from models.config import TrainingConfig  # a leaf: no TensorFlow

    defaults = TrainingConfig()
    replay = bool(argv) and argv[0] == "replay"
    parser = argparse.ArgumentParser(
        prog="local_runner.py replay" if replay else None,
        description=__doc__.splitlines()[0],
    )
    if replay:
        argv = argv[1:]
        parser.add_argument(
            "--first-month",
            type=_month,
            default="2013-03",
            help="first month replayed; earlier months are history "
            "(default 2013-03: two months of history)",
        )
        parser.add_argument(
            "--last-month",
            type=_month,
            default="2013-12",
            help="last month replayed (default 2013-12)",
        )
    else:
        parser.add_argument(
            "--eval-month",
            type=_month,
            action="append",
            dest="eval_months",
            help="a month the candidate is judged on, YYYY-MM (repeatable; default 2013-11 "
            "and 2013-12)",
        )
    parser.add_argument(
        "--train-window",
        type=_positive_int,
        default=None,
        help="months the candidate trains on before the evaluation month(s), the last one "
        "for validation (default 10; 6 for the replay)",
    )
    parser.add_argument(
        "--drift-action",
        choices=("block", "warn"),
        default="block",
        help="what drift of a month from the month before does: stop the run (default) or "
        "report it in the summary and go on",
    )
    parser.add_argument(
        "--output-dir",
        type=pathlib.Path,
        default=pathlib.Path("output"),
        help="data, pipeline root, ML Metadata, pushed models, run summaries",
    )
    parser.add_argument(
        "--rows-per-month",
        type=_positive_int,
        default=None,
        help="sample this many flights per month (default: all)",
    )
    parser.add_argument(
        "--fast", action="store_true", help="skip the Tuner and train at most 3 epochs"
    )
    parser.add_argument(
        "--tuner-trials",
        type=_positive_int,
        default=None,
        help=(
            f"tuning budget (default {defaults.tuner_trials} trials of "
            f"{defaults.tuner_epochs} epoch(s))"
        ),
    )
    parser.add_argument(
        "--min-eval-auc", type=_fraction, default=None, help="AUC floor for blessing (default 0.70)"
    )
    parser.add_argument(
        "--mobile-auc-tolerance",
        type=_fraction,
        default=None,
        help="largest eval AUC loss a quantized TFLite variant may show and "
        "still be published (default 0.005)",
    )
    parser.add_argument("--no-cache", action="store_true", help="re-execute every component")
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="show the libraries' output (TensorFlow, Beam, KerasTuner, Keras, TFLite) on "
        "the terminal instead of the run's log file",
    )
    args = parser.parse_args(argv)
    args.replay = replay
    return args


def main(argv: list[str]) -> int:
    args = parse_args(argv)
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow is imported
    if args.verbose:
        return _main(args)
    from pipeline import console

    output = args.output_dir.resolve()
    started = datetime.datetime.now().strftime("%Y%m%dT%H%M%S")
    log_file = output / ("replay/replay.log" if args.replay else f"runs/run-{started}.log")
    with console.capture(log_file):
        return _main(args)


def _main(args: argparse.Namespace) -> int:
    import dataclasses

    from mobile.config import MobileConfig
    from models.config import TrainingConfig
    from pipeline import console, local, replay, summary
    from pipeline.config import DriftAction, local_config
    from pipeline.data import DataError
    from pipeline.lock import RunLocked

    training = TrainingConfig()
    if args.fast:
        training = dataclasses.replace(training, max_epochs=3)
    if args.tuner_trials is not None:
        training = dataclasses.replace(training, tuner_trials=args.tuner_trials)
    overrides = {
        "training": training,
        "tune": not args.fast,
        "enable_cache": not args.no_cache,
        "rows_per_month": args.rows_per_month,
        "beam_pipeline_args": BEAM_ARGS,
        "drift_action": DriftAction(args.drift_action),
    }
    if args.train_window is not None:
        overrides["train_window"] = args.train_window
    elif args.replay:
        overrides["train_window"] = replay.DEFAULT_TRAIN_WINDOW
    if not args.replay and args.eval_months:
        overrides["eval_months"] = tuple(args.eval_months)
    if args.min_eval_auc is not None:
        overrides["min_eval_auc"] = args.min_eval_auc
    if args.mobile_auc_tolerance is not None:
        overrides["mobile"] = MobileConfig(auc_tolerance=args.mobile_auc_tolerance)
    try:
        config = local_config(args.output_dir, **overrides)
    except ValueError as error:
        console.say(f"error: {error}", error=True)
        return 2
    if args.replay:
        output = args.output_dir.resolve()
        try:
            steps = replay.replay(
                config,
                args.first_month,
                args.last_month,
                output / "runs",
                output / "replay",
                verbose=args.verbose,
            )
        except (ValueError, DataError, RunLocked) as error:
            console.say(f"error: {error}", error=True)
            return 2
        console.say(f"Replay: {output / 'replay' / 'replay.json'}")
        _say_files(output / "replay" / "report.html")
        return 1 if any(s.status == "failed" for s in steps) else 0

    try:
        result = local.run(config, args.output_dir.resolve() / "runs", verbose=args.verbose)
    except (DataError, RunLocked) as error:
        console.say(f"error: {error}", error=True)
        return 2
    run_dir = pathlib.Path(result["summary_file"]).parent
    console.move_log(run_dir / "run.log")
    console.say("")
    console.say(summary.format_summary(result))
    console.say(f"Summary: {result['summary_file']}")
    _say_files(result.get("report_file"), result.get("report_error"))
    return 1 if result["status"] == "failed" else 0


def _say_files(report: str | pathlib.Path | None, report_error: str | None = None) -> None:
    """The last lines: the libraries' log (when captured) and the report."""
    from pipeline import console

    if console.log_path() is not None:
        console.say(f"Log: {console.log_path()}")
    if report_error:
        console.say(f"Report: not written ({report_error})", error=True)
    elif report and pathlib.Path(report).exists():
        console.say(f"Report: {report}")


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
