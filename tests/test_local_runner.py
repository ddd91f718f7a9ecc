"""local_runner.py's command line: options reach the config, exit codes say what happened."""

from __future__ import annotations

import pathlib

import pytest

import local_runner
from pipeline import local
from pipeline.data import DataError

pytestmark = pytest.mark.unit


@pytest.fixture
def runs(monkeypatch, tmp_path):
    """Replaces the pipeline run; records the config it was given."""
    seen = []

    def run(status="succeeded", error=None):
        def fake(config, runs_dir, verbose=False):
            seen.append(config)
            if isinstance(error, Exception):
                raise error
            return {
                "pipeline": config.pipeline_name,
                "run_id": "r",
                "status": status,
                "components": [],
                "error": error,
                "summary_file": str(runs_dir / "r" / "summary.json"),
            }

        monkeypatch.setattr(local, "run", fake)
        return seen

    return run


def test_a_successful_run_exits_0_and_options_reach_the_config(runs, tmp_path, capsys):
    seen = runs()
    code = local_runner.main(
        [
            "--output-dir",
            str(tmp_path),
            "--rows-per-month",
            "300",
            "--fast",
            "--min-eval-auc",
            "0.6",
            "--mobile-auc-tolerance",
            "0.02",
            "--no-cache",
        ]
    )
    assert code == 0
    (config,) = seen
    assert config.rows_per_month == 300 and config.min_eval_auc == 0.6
    assert config.tune is False and config.training.max_epochs == 3
    assert config.mobile.auc_tolerance == 0.02 and config.enable_cache is False
    assert config.beam_pipeline_args == local_runner.BEAM_ARGS
    assert "Summary: " in capsys.readouterr().out


def test_a_failed_component_exits_1(runs, tmp_path):
    runs(status="failed", error="RuntimeError: boom")
    assert local_runner.main(["--output-dir", str(tmp_path)]) == 1


def test_unreadable_input_tables_exit_2_naming_the_file(runs, tmp_path, capsys):
    runs(error=DataError("flights.csv.zip: missing column(s) carrier"))
    assert local_runner.main(["--output-dir", str(tmp_path)]) == 2
    assert "error: flights.csv.zip: missing column(s) carrier" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv", [["--rows-per-month", "0"], ["--min-eval-auc", "1.2"], ["--tuner-trials", "-1"]]
)
def test_invalid_options_are_refused_before_anything_runs(runs, argv, capsys):
    seen = runs()
    with pytest.raises(SystemExit) as exit_info:
        local_runner.main(argv)
    assert exit_info.value.code == 2 and not seen
    assert "must be" in capsys.readouterr().err


def test_a_second_run_on_a_locked_output_folder_exits_2_naming_the_holder(runs, tmp_path, capsys):
    from pipeline.lock import RunLocked

    runs(error=RunLocked("another run is using this output folder (pid 7, started x)"))
    assert local_runner.main(["--output-dir", str(tmp_path)]) == 2
    assert "another run is using this output folder (pid 7" in capsys.readouterr().err


def test_run_options_for_the_months_reach_the_config(runs, tmp_path):
    from pipeline.config import DriftAction
    from pipeline.months import Month

    seen = runs()
    argv = ["--output-dir", str(tmp_path), "--eval-month", "2013-07", "--train-window", "4"]
    assert local_runner.main([*argv, "--drift-action", "warn"]) == 0
    (config,) = seen
    assert config.eval_months == (Month(2013, 7),) and config.train_window == 4
    assert config.drift_action is DriftAction.WARN


def test_a_replay_that_starts_without_two_months_of_history_exits_2(runs, tmp_path, capsys):
    seen = runs()
    argv = ["replay", "--output-dir", str(tmp_path), "--first-month", "2013-02"]
    assert local_runner.main(argv) == 2
    assert "needs 2 months of history" in capsys.readouterr().err and not seen


def test_the_beam_arguments_keep_tfx_from_packing_itself_per_component():
    """Without a dependency flag TFX builds an sdist of its own install for every Beam
    component (tfx/utils/dependency_utils.py): ~1 s and a 51 MB copy under /tmp each."""
    from tfx.utils import dependency_utils

    args = list(local_runner.BEAM_ARGS)
    assert dependency_utils.make_beam_dependency_flags(args) == args
    setup_file = next(a.removeprefix("--setup_file=") for a in args if "--setup_file=" in a)
    assert pathlib.Path(setup_file) == pathlib.Path(local_runner.__file__).parent / "setup.py"
    assert pathlib.Path(setup_file).is_file()
