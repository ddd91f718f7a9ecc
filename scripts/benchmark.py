"""Times the full pipeline as a user runs it, then an unchanged re-run; prints the figures.

    python3 scripts/dev.py benchmark                  # full year, default config (tuning on)
    python3 scripts/dev.py benchmark --fast           # any local_runner.py option passes through
    python3 scripts/dev.py benchmark --monthly-step   # one continuous-training step

Each run is `python local_runner.py` in a fresh process (imports included), in a fresh output
folder. Targets on a 2-core machine: cold run <= 300 s, unchanged re-run <= 45 s. With
--monthly-step: a replay of 2013-11 and 2013-12 (window 6); November warms the store (history
ingested, a champion trained), December is the measured step: one new month ingested, the
rest cached, a candidate trained and judged against the champion; target <= 90 s.
"""

from __future__ import annotations

import argparse
import json
import pathlib
import shutil
import subprocess
import sys
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
TARGETS = {"cold": 300.0, "cached": 45.0, "monthly_step": 90.0}


def _run(output_dir: pathlib.Path, extra: list[str], log: pathlib.Path) -> tuple[float, dict]:
    command = [sys.executable, "local_runner.py", "--output-dir", str(output_dir), *extra]
    started = time.monotonic()
    with log.open("w") as out:
        code = subprocess.run(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT).returncode
    seconds = time.monotonic() - started
    if code != 0:
        sys.exit(f"run failed (exit {code}); see {log}")
    summaries = sorted(
        (output_dir / "runs").glob("*/summary.json"), key=lambda p: p.stat().st_mtime
    )
    return seconds, json.loads(summaries[-1].read_text())


def _monthly_step(output_dir: pathlib.Path, runner_args: list[str]) -> int:
    command = [
        sys.executable,
        "local_runner.py",
        "replay",
        "--first-month",
        "2013-11",
        "--last-month",
        "2013-12",
        "--output-dir",
        str(output_dir),
        *runner_args,
    ]
    print("[benchmark] replay 2013-11 (warm-up) and 2013-12 (measured) ...", flush=True)
    with (output_dir / "replay.log").open("w") as out:
        code = subprocess.run(command, cwd=ROOT, stdout=out, stderr=subprocess.STDOUT).returncode
    if code != 0:
        sys.exit(f"replay failed (exit {code}); see {output_dir / 'replay.log'}")
    steps = json.loads((output_dir / "replay" / "replay.json").read_text())
    summaries = sorted(
        (output_dir / "runs").glob("*/summary.json"), key=lambda p: p.stat().st_mtime
    )
    step = json.loads(summaries[-1].read_text())
    print("\ncomponent                        state    seconds")
    for c in step["components"]:
        print(f"  {c['component']:<32} {c['state']:<7} {c['seconds']:7.1f}")
    wall = steps[-1]["wall_seconds"]
    verdict = "met" if wall <= TARGETS["monthly_step"] else "MISSED"
    print(
        f"\nmonthly step 2013-12: {wall:.1f} s (target {TARGETS['monthly_step']:.0f} s, "
        f"{verdict}); candidate AUC {steps[-1]['candidate_auc']}, champion AUC "
        f"{steps[-1]['champion_auc']}, {steps[-1]['decision']}"
    )
    result = {"steps": steps, "components": step["components"], "target": TARGETS["monthly_step"]}
    (output_dir / "benchmark.json").write_text(json.dumps(result, indent=2))
    print(f"figures: {output_dir / 'benchmark.json'}")
    return 0


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output-dir", type=pathlib.Path, default=ROOT / "benchmark-output")
    parser.add_argument(
        "--monthly-step",
        action="store_true",
        help="time one continuous-training step (replay of 2013-11, 2013-12)",
    )
    args, runner_args = parser.parse_known_args(argv)
    shutil.rmtree(args.output_dir, ignore_errors=True)
    args.output_dir.mkdir(parents=True)
    if args.monthly_step:
        return _monthly_step(args.output_dir, runner_args)

    results = {}
    for name in ("cold", "cached"):
        print(f"[benchmark] {name} run ...", flush=True)
        seconds, summary = _run(args.output_dir, runner_args, args.output_dir / f"{name}.log")
        results[name] = {
            "wall_seconds": round(seconds, 1),
            "target_seconds": TARGETS[name],
            "components": {
                c["component"]: [c["state"], c["seconds"]] for c in summary["components"]
            },
            "eval_auc": summary.get("eval_metrics", {}).get("overall", {}).get("auc"),
            "rows": {
                month: m.get("rows")
                for month, m in summary.get("data", {}).get("months", {}).items()
            },
            "blessed": summary.get("blessed"),
        }
        print(
            f"[benchmark] {name}: {seconds:.1f} s wall (target <= {TARGETS[name]:.0f} s)",
            flush=True,
        )

    print("\ncomponent                        cold (s)   re-run")
    for component, (_, seconds) in results["cold"]["components"].items():
        again = results["cached"]["components"].get(component, ["-", 0.0])
        print(f"  {component:<32} {seconds:7.1f}   {again[0]} {again[1]:.1f}")
    cold = results["cold"]
    rows = sum(n or 0 for n in cold["rows"].values())
    print(f"\nrows {rows:,}, eval AUC {cold['eval_auc']:.4f}, blessed {cold['blessed']}")
    for name, result in results.items():
        verdict = "met" if result["wall_seconds"] <= result["target_seconds"] else "MISSED"
        print(
            f"{name:>6}: {result['wall_seconds']:6.1f} s  target {result['target_seconds']:.0f} s"
            f"  {verdict}"
        )
    (args.output_dir / "benchmark.json").write_text(json.dumps(results, indent=2))
    print(f"figures: {args.output_dir / 'benchmark.json'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
