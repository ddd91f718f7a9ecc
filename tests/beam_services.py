"""Beam's own portable services as subprocesses on free loopback ports, for tests.

`portable_services(log_dir)` starts

- the Python job service (`apache_beam.runners.portability.local_job_service_main`): it
  accepts jobs over the Beam Job API, as a Flink or Spark job server does, and runs them
  with its FnApiRunner, which asks the environment of each transform for SDK workers;
- an SDK worker pool (`apache_beam.runners.worker.worker_pool_main`): the EXTERNAL
  environment, the same gRPC service (BeamFnExternalWorkerPool.StartWorker) that the
  `portable` preset's sidecar (the Python SDK image with `--worker_pool`) serves to Flink's or
  Spark's task managers.

The pool starts each worker as `python -c "...SdkHarness(...).run()"`, whichever `python`
comes first on its PATH (worker_pool_main.py, StartWorker), not its own interpreter. So the
pool's PATH starts with this interpreter's directory: a `python` without Beam or TFX there
makes every worker die at import and the job wait for it until the client's
`--job_server_timeout` ends in DEADLINE_EXCEEDED.

Both processes lead their own process group (the pool's workers are its children) and are
stopped with SIGTERM, then SIGKILL, however the block is left.
"""

from __future__ import annotations

import contextlib
import dataclasses
import os
import pathlib
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping

import portpicker

START_TIMEOUT_S = 90.0  # importing Beam (and TF through it) takes 10-20 s on 2 cores
STOP_TIMEOUT_S = 10.0


@dataclasses.dataclass(frozen=True)
class PortableServices:
    job_port: int
    pool_port: int
    job_log: pathlib.Path
    pool_log: pathlib.Path
    staging_dir: pathlib.Path  # the job service's artifact staging, one folder per job

    @property
    def job_endpoint(self) -> str:
        return f"localhost:{self.job_port}"

    @property
    def pool_endpoint(self) -> str:
        return f"localhost:{self.pool_port}"

    def pipeline_args(self, job_server_timeout_s: int | None = None) -> list[str]:
        """The `portable` preset's Beam arguments (kubeflow_runner.beam_args), pointed here.

        `--job_server_timeout` is also the deadline of the client's job state stream
        (portable_runner.py: GetStateStream(..., timeout=self.timeout)): a job running longer
        than it fails in the client with DEADLINE_EXCEEDED while the job service carries on.
        Given, it replaces the preset's (Beam's argument parser keeps the last value).
        """
        import kubeflow_runner as kr

        settings, _ = kr.settings_from(
            [
                "--bucket-root",
                "gs://unused/flight_delay",
                "--image",
                "unused-image:0",
                "--beam",
                "portable",
                "--portable-job-endpoint",
                self.job_endpoint,
                "--portable-environment",
                f"EXTERNAL:{self.pool_endpoint}",
            ],
            {},
        )
        args = list(kr.beam_args(settings))
        if job_server_timeout_s is not None:
            args.append(f"--job_server_timeout={job_server_timeout_s}")
        return args

    def job_service_log(self) -> str:
        return self.job_log.read_text(errors="replace")

    def worker_pool_log(self) -> str:
        return self.pool_log.read_text(errors="replace")


def _start(args: list[str], log: pathlib.Path, env: Mapping[str, str]) -> subprocess.Popen:
    with open(log, "wb") as out:  # the child keeps its own descriptor
        return subprocess.Popen(
            [sys.executable, "-m", *args],
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            env=dict(env),
            start_new_session=True,  # its own process group: the pool's workers stop with it
        )


def _wait_listening(proc: subprocess.Popen, port: int, log: pathlib.Path, deadline: float):
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(
                f"{proc.args[2]} exited with {proc.returncode} before listening on {port}:\n"
                + log.read_text(errors="replace")[-3000:]
            )
        with contextlib.suppress(OSError):
            socket.create_connection(("localhost", port), timeout=1).close()
            return
        time.sleep(0.2)
    raise TimeoutError(
        f"{proc.args[2]} not listening on {port} after {START_TIMEOUT_S} s:\n"
        + log.read_text(errors="replace")[-3000:]
    )


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM to the process group this helper created, SIGKILL if it lingers."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            pass
    with contextlib.suppress(ProcessLookupError):  # workers the group leader left behind
        os.killpg(proc.pid, signal.SIGKILL)
    with contextlib.suppress(subprocess.TimeoutExpired):
        proc.wait(STOP_TIMEOUT_S)


@contextlib.contextmanager
def portable_services(
    log_dir: pathlib.Path, worker_path: str | None = None
) -> Iterator[PortableServices]:
    """A job service and an EXTERNAL worker pool on free loopback ports, stopped on exit.

    worker_path: the PATH of the pool (and so which `python` its workers run); by default
    this interpreter's directory first. Temporary files of both go under `log_dir/tmp`.
    """
    log_dir.mkdir(parents=True, exist_ok=True)
    tmp = log_dir / "tmp"
    tmp.mkdir(exist_ok=True)
    env = {**os.environ, "TMPDIR": str(tmp), "TF_CPP_MIN_LOG_LEVEL": "2"}
    pool_env = {
        **env,
        "PATH": worker_path
        if worker_path is not None
        else os.pathsep.join([os.path.dirname(sys.executable), env.get("PATH", "")]),
    }
    job_port, pool_port = portpicker.pick_unused_port(), portpicker.pick_unused_port()
    services = PortableServices(
        job_port,
        pool_port,
        log_dir / "job_service.log",
        log_dir / "worker_pool.log",
        tmp / "staging",
    )
    procs: list[subprocess.Popen] = []
    try:
        procs.append(
            _start(
                [
                    "apache_beam.runners.portability.local_job_service_main",
                    f"--port={job_port}",
                    f"--staging_dir={services.staging_dir}",
                ],
                services.job_log,
                env,
            )
        )
        procs.append(
            _start(
                ["apache_beam.runners.worker.worker_pool_main", f"--service_port={pool_port}"],
                services.pool_log,
                pool_env,
            )
        )
        deadline = time.monotonic() + START_TIMEOUT_S
        _wait_listening(procs[0], job_port, services.job_log, deadline)
        _wait_listening(procs[1], pool_port, services.pool_log, deadline)
        yield services
    finally:
        for proc in reversed(procs):
            _stop(proc)
