"""Bootstraps the environment from the committed lock, then runs the pipeline or the tests.

    python3 scripts/dev.py run [local_runner.py options]   # the pipeline on the bundled data
    python3 scripts/dev.py replay [options]                # 2013 month by month (retraining)
    python3 scripts/dev.py test [pytest options]           # the test suite
    python3 scripts/dev.py lineage <version | URI | --span YYYY-MM> [--json]  # from ML Metadata
    python3 scripts/dev.py monitor --logs DIR [options]    # request logs vs training: skew, drift
    python3 scripts/dev.py benchmark [options]             # timings of the full pipeline
    python3 scripts/dev.py benchmark-serving [options]     # serving latency and throughput
    python3 scripts/dev.py benchmark-mobile [options]      # TFLite sizes, AUC and latency
    python3 scripts/dev.py lock                            # re-resolve the locks

Needs only Python 3.11 and pip. The virtual environment (.venv) is (re)built when the lock or
setup.py changes and reused otherwise. Installing from the complete lock with --no-deps skips
pip's resolver, which backtracks for over ten minutes on this dependency set.
"""

from __future__ import annotations

import hashlib
import os
import pathlib
import subprocess
import sys
import time
import venv

ROOT = pathlib.Path(__file__).resolve().parent.parent
VENV = ROOT / ".venv"
REQUIREMENTS = ROOT / "requirements"
LOCK, TFX = REQUIREMENTS / "lock.txt", REQUIREMENTS / "tfx.txt"
SOURCES = REQUIREMENTS / "requirements.in"
STAMP = VENV / ".installed"
UV_VERSION = "0.13.9"


def _python() -> pathlib.Path:
    return VENV / "bin" / "python"


def _run(*command: str | os.PathLike, log: pathlib.Path | None = None) -> None:
    """Runs a command, its output to the terminal or appended to `log`; on failure with a log,
    prints the log's last lines and its path, then exits with the command's code."""
    line = "+ " + " ".join(str(c) for c in command)
    if log is None:
        print(line, flush=True)
        subprocess.run([str(c) for c in command], check=True, cwd=ROOT)
        return
    with log.open("a") as out:
        print(line, file=out, flush=True)
        code = subprocess.run(
            [str(c) for c in command], cwd=ROOT, stdout=out, stderr=subprocess.STDOUT
        ).returncode
    if code:
        tail = log.read_text(errors="replace").splitlines()[-30:]
        sys.exit("\n".join([*tail, f"error: {line[2:]} failed (exit {code}); full log: {log}"]))


def _fingerprint() -> str:
    digest = hashlib.sha256()
    for path in (LOCK, TFX, ROOT / "setup.py"):
        digest.update(path.read_bytes())
    return digest.hexdigest()


def ensure_environment() -> None:
    """Creates or refreshes .venv so that it matches the lock exactly."""
    if sys.version_info[:2] != (3, 11):
        sys.exit(
            f"Python 3.11 is required (found {sys.version.split()[0]}): the locked TFX "
            "1.16 stack is resolved for it. See README, 'Other Python versions'."
        )
    if STAMP.exists() and STAMP.read_text() == _fingerprint():
        return
    started = time.monotonic()
    venv.EnvBuilder(with_pip=True, clear=True).create(VENV)
    log = VENV / "install.log"
    print(
        f"Installing the locked environment into {VENV} (a few minutes, once; log: {log}) ...",
        flush=True,
    )
    pip = (_python(), "-m", "pip", "install", "--disable-pip-version-check", "--no-deps")
    _run(*pip, "-r", LOCK, log=log)
    # The tfx wheels declare Requires-Python <3.11; their dependencies are in the lock.
    _run(*pip, "--ignore-requires-python", "-r", TFX, log=log)
    _run(*pip, "--no-build-isolation", "-e", ROOT, log=log)
    STAMP.write_text(_fingerprint())
    print(f"Environment ready in {time.monotonic() - started:.0f} s.", flush=True)


def lock() -> None:
    """Re-resolves requirements.in for Python 3.11 and image.in for the pipeline image, with
    uv (pip's resolver takes too long)."""
    tools = ROOT / ".venv-tools"
    if not (tools / "bin" / "uv").exists():
        venv.EnvBuilder(with_pip=True, clear=True).create(tools)
        _run(tools / "bin" / "python", "-m", "pip", "install", f"uv=={UV_VERSION}")
    _run(
        tools / "bin" / "uv",
        "pip",
        "compile",
        SOURCES,
        "--python-version",
        "3.11",
        "--python-platform",
        "x86_64-manylinux_2_36",
        "--no-header",
        "-o",
        LOCK,
    )
    # The pipeline image: Python 3.10 of the official TFX image, an older glibc to be safe.
    _run(
        tools / "bin" / "uv",
        "pip",
        "compile",
        REQUIREMENTS / "image.in",
        "--python-version",
        "3.10",
        "--python-platform",
        "x86_64-manylinux_2_31",
        "--no-header",
        "-o",
        REQUIREMENTS / "image-lock.txt",
    )


def main(argv: list[str]) -> int:
    commands = {
        "run": ["local_runner.py"],
        "replay": ["local_runner.py", "replay"],
        "test": ["-m", "pytest"],
        "lineage": ["-m", "pipeline.lineage"],
        "monitor": ["-m", "pipeline.monitor"],
        "benchmark": ["scripts/benchmark.py"],
        "benchmark-serving": ["scripts/benchmark_serving.py"],
        "benchmark-mobile": ["scripts/benchmark_mobile.py"],
    }
    if not argv or argv[0] not in (*commands, "lock", "setup"):
        print(__doc__)
        return 2
    if argv[0] == "lock":
        lock()
        return 0
    ensure_environment()
    if argv[0] == "setup":
        return 0
    env = dict(os.environ, PYTHONUNBUFFERED="1")
    return subprocess.run(
        [str(_python()), *commands[argv[0]], *argv[1:]], cwd=ROOT, env=env
    ).returncode


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
