"""Serving latency and throughput: in-process SavedModel, dev server over REST and gRPC, the
cost of request logging (sampling rate 1.0 vs off), and a 10,000-request soak with a version
switch in the middle; prints the figures.

    python3 scripts/dev.py run                      # once, to have a pushed model and eval data
    python3 scripts/dev.py benchmark-serving [--model-dir DIR] [--data-dir DIR] [--logging-only]

Goals (2 cores): in-process batch-1 p50 <= 3 ms and p99 <= 10 ms, batch 256 >= 20k rows/s;
soak: 0 failed requests. The dev server runs in its own process, as a model server would.
`--logging-only` measures just the request-logging cost (two dev server starts).
"""

from __future__ import annotations

import argparse
import concurrent.futures
import contextlib
import json
import os
import pathlib
import socket
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

import numpy as np  # noqa: E402
import tensorflow as tf  # noqa: E402

from models.constants import MODEL_NAME, OUTPUT_KEY, PREDICT_SIGNATURE  # noqa: E402
from serving import push  # noqa: E402
from serving.client import GrpcClient, RestClient  # noqa: E402
from transforms import codec  # noqa: E402

MODEL = MODEL_NAME
GOALS = {"batch1_p50_ms": 3.0, "batch1_p99_ms": 10.0, "batch256_rows_per_s": 20_000}


def _percentiles(seconds: list[float]) -> dict[str, float]:
    ms = np.array(seconds) * 1000
    return {
        "p50_ms": round(float(np.percentile(ms, 50)), 3),
        "p99_ms": round(float(np.percentile(ms, 99)), 3),
    }


def _time_each(call, count: int) -> list[float]:
    times = []
    for i in range(count):
        start = time.perf_counter()
        call(i)
        times.append(time.perf_counter() - start)
    return times


def in_process(model_dir: str, columns: dict[str, np.ndarray]) -> dict:
    signature = tf.saved_model.load(model_dir).signatures[PREDICT_SIGNATURE]
    tensors = {k: tf.constant(v) for k, v in columns.items()}
    size = len(columns["distance"])
    singles = [{k: v[i : i + 1] for k, v in tensors.items()} for i in range(256)]
    batches = [{k: v[i : i + 256] for k, v in tensors.items()} for i in range(0, size - 255, 256)]
    for request in singles[:20] + batches[:3]:  # tracing and allocation happen once
        signature(**request)
    result = _percentiles(_time_each(lambda i: signature(**singles[i % 256]), 2000))
    started, rows = time.perf_counter(), 0
    for i in range(200):
        rows += len(signature(**batches[i % len(batches)])[OUTPUT_KEY])
    result["batch256_rows_per_s"] = round(rows / (time.perf_counter() - started))
    return result


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_until_serving(rest: RestClient, process: subprocess.Popen) -> None:
    deadline = time.time() + 120
    while time.time() < deadline:
        if process.poll() is not None:
            sys.exit(f"the dev server exited with {process.returncode}")
        try:
            rest.metadata()
            return
        except Exception:  # noqa: BLE001 -- not up yet
            time.sleep(0.5)
    sys.exit("the dev server did not start within 120 s")


def _concurrent(calls, clients: int, total: int) -> tuple[float, list[str]]:
    """Runs `total` calls spread over `clients` threads; returns requests/s and failures."""
    failures: list[str] = []

    def worker(index: int) -> None:
        for i in range(index, total, clients):
            try:
                calls[i % len(calls)](i)
            except Exception as e:  # noqa: BLE001 -- every failure is counted
                failures.append(repr(e))

    started = time.perf_counter()
    with concurrent.futures.ThreadPoolExecutor(clients) as pool:
        list(pool.map(worker, range(clients)))
    return total / (time.perf_counter() - started), failures


@contextlib.contextmanager
def _dev_server(base: str, *flags: str):
    """A dev server process on `base`, with REST and gRPC clients; stopped with SIGTERM (which
    finishes its request log files)."""
    rest_port, grpc_port = _free_port(), _free_port()
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "serving.dev_server",
            f"--model_name={MODEL}",
            f"--model_base_path={base}",
            f"--rest_api_port={rest_port}",
            f"--port={grpc_port}",
            "--file_system_poll_wait_seconds=0.5",
            *flags,
        ],
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    rest = RestClient(f"http://127.0.0.1:{rest_port}", MODEL)
    grpc_client = GrpcClient(f"127.0.0.1:{grpc_port}", MODEL)
    try:
        _wait_until_serving(rest, process)
        yield rest, grpc_client
    finally:
        for client in (rest, grpc_client):
            client.close()
        process.terminate()
        process.wait(timeout=30)


def logging_cost(model_dir: str, rows: list[dict], count: int = 1000) -> dict:
    """Batch-1 predict latency over REST and gRPC with request logging off and at sampling
    rate 1.0 (every request written as a PredictionLog).

    Two dev servers run side by side on the same model and take the requests in alternating
    blocks of 50, so a change in the machine's load during the run affects both settings alike
    (on a shared machine, sequential runs drift by more than the cost), while the writer
    thread's work stays within its own server's blocks."""
    settings = {"off": (), "rate_1.0": ("--request_log_sampling_rate=1.0",)}
    figures: dict = {}
    with tempfile.TemporaryDirectory() as tmp, contextlib.ExitStack() as stack:
        base = os.path.join(tmp, MODEL)
        push.push(model_dir, base)
        log_dir = os.path.join(tmp, "request_logs")
        clients = {
            setting: stack.enter_context(
                _dev_server(base, *flags, *([f"--request_log_dir={log_dir}"] if flags else []))
            )
            for setting, flags in settings.items()
        }
        for protocol, index in (("rest", 0), ("grpc", 1)):
            times: dict[str, list[float]] = {setting: [] for setting in settings}
            for setting in settings:  # warm-up, not measured
                for i in range(20):
                    clients[setting][index].predict([rows[i % len(rows)]])
            for block in range(0, count, 50):
                for setting in settings:
                    client = clients[setting][index]
                    for i in range(block, min(block + 50, count)):
                        started = time.perf_counter()
                        client.predict([rows[i % len(rows)]])
                        times[setting].append(time.perf_counter() - started)
            for setting in settings:
                figures.setdefault(setting, {})[protocol] = _percentiles(times[setting])
        stack.close()  # SIGTERM: the logging server finishes its last file
        files = sorted(tf.io.gfile.glob(f"{log_dir}/*.tfrecord"))
        figures["records_written"] = sum(1 for _ in tf.data.TFRecordDataset(files))
        figures["bytes_per_record"] = round(
            sum(tf.io.gfile.stat(f).length for f in files) / max(figures["records_written"], 1)
        )
    for setting in settings:
        print(f"[benchmark] request logging {setting}: {figures[setting]}", flush=True)
    return figures


def server_figures(model_dir: str, rows: list[dict], in_process_p50: float) -> dict:
    with tempfile.TemporaryDirectory() as tmp:
        base = os.path.join(tmp, MODEL)
        # The copy carries the model's own assets.extra/ warmup file, if it has one (a pushed
        # version does); passing it again would copy it twice and fail.
        push.push(model_dir, base)
        with _dev_server(base) as (rest, grpc_client):
            figures = {}
            for name, client in (("rest", rest), ("grpc", grpc_client)):
                for i in range(20):
                    client.predict([rows[i]])
                latency = _percentiles(
                    _time_each(lambda i, c=client: c.predict([rows[i % len(rows)]]), 500)
                )
                per_second, failures = _concurrent(
                    [lambda i, c=client: c.predict([rows[i % len(rows)]])], 8, 2000
                )
                figures[name] = {
                    **latency,
                    "requests_per_s_8_clients": round(per_second),
                    "p50_vs_in_process": round(latency["p50_ms"] / in_process_p50, 1),
                    "failures": len(failures),
                }
                print(f"[benchmark] {name}: {figures[name]}", flush=True)

            # Soak: 10,000 requests over both protocols; a new version lands half way through.
            calls = [
                lambda i: rest.predict([rows[i % len(rows)]]),
                lambda i: grpc_client.predict([rows[i % len(rows)]]),
            ]
            before = push.versions(base)[-1]
            pushed: dict = {}

            def soak_call(i: int) -> None:
                if i == 5000:
                    pushed["version"], _ = push.push(model_dir, base)
                calls[i % 2](i)

            per_second, failures = _concurrent([soak_call], 8, 10_000)
            deadline = time.time() + 60
            while (
                rest.metadata()["model_spec"]["version"] != str(pushed["version"])
                and time.time() < deadline
            ):
                time.sleep(0.2)
            figures["soak"] = {
                "requests": 10_000,
                "failed": len(failures),
                "requests_per_s": round(per_second),
                "version_before": before,
                "version_after": int(rest.metadata()["model_spec"]["version"]),
                "pushed_mid_soak": pushed["version"],
                "first_failures": failures[:3],
            }
            return figures


def _print_logging_cost(figures: dict) -> None:
    for protocol in ("rest", "grpc"):
        off, on = figures["off"][protocol], figures["rate_1.0"][protocol]
        print(
            f"request logging {protocol:<4} batch-1 p50 {off['p50_ms']} -> {on['p50_ms']} ms, "
            f"p99 {off['p99_ms']} -> {on['p99_ms']} ms (off -> sampling rate 1.0)"
        )


def _newest_model() -> str:
    base = ROOT / "output" / "serving_model" / MODEL
    found = push.versions(str(base))
    if not found:
        sys.exit(f"no pushed model under {base}; run `python3 scripts/dev.py run` first")
    return str(base / str(found[-1]))


def main(argv: list[str]) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model-dir", help="a SavedModel (default: the newest pushed)")
    parser.add_argument(
        "--data-dir",
        type=pathlib.Path,
        default=ROOT / "output" / "data-full",
        help="prepared data; eval rows are the requests",
    )
    parser.add_argument(
        "--output", type=pathlib.Path, default=ROOT / "benchmark-output" / "serving.json"
    )
    parser.add_argument(
        "--logging-only",
        action="store_true",
        help="measure only the request-logging cost (rate 1.0 vs off)",
    )
    args = parser.parse_args(argv)
    model_dir = args.model_dir or _newest_model()
    files = sorted(str(p) for p in (args.data_dir / "eval").glob("*.tfrecord"))
    if not files:
        sys.exit(f"no eval data under {args.data_dir / 'eval'}; run the pipeline first")
    records = list(tf.data.TFRecordDataset(files).take(4096).as_numpy_iterator())
    columns = codec.columns_from_examples(records)
    rows = codec.rows_from_columns({k: v[:512] for k, v in columns.items()})
    print(f"[benchmark] model {model_dir}, {len(records)} eval rows", flush=True)
    if args.logging_only:
        figures = logging_cost(model_dir, rows)
        _print_logging_cost(figures)
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.with_name("serving_logging.json").write_text(json.dumps(figures, indent=2))
        return 0

    results = {"model_dir": model_dir, "in_process": in_process(model_dir, columns)}
    print(f"[benchmark] in-process: {results['in_process']}", flush=True)
    results.update(server_figures(model_dir, rows, results["in_process"]["p50_ms"]))
    results["request_logging"] = logging_cost(model_dir, rows)

    p = results["in_process"]
    checks = {
        "in-process batch-1 p50": (p["p50_ms"], GOALS["batch1_p50_ms"], "<="),
        "in-process batch-1 p99": (p["p99_ms"], GOALS["batch1_p99_ms"], "<="),
        "in-process batch-256 rows/s": (
            p["batch256_rows_per_s"],
            GOALS["batch256_rows_per_s"],
            ">=",
        ),
        "soak failed requests": (results["soak"]["failed"], 0, "<="),
    }
    print()
    for name, (value, goal, op) in checks.items():
        met = value <= goal if op == "<=" else value >= goal
        print(f"{name:<30} {value:>10}  goal {op} {goal}  {'met' if met else 'MISSED'}")
    for name in ("rest", "grpc"):
        r = results[name]
        print(
            f"dev server {name:<5} batch-1 p50 {r['p50_ms']} ms, p99 {r['p99_ms']} ms, "
            f"{r['requests_per_s_8_clients']} req/s with 8 clients, p50 x"
            f"{r['p50_vs_in_process']} of in-process"
        )
    _print_logging_cost(results["request_logging"])
    soak = results["soak"]
    print(
        f"soak: {soak['requests']} requests, {soak['failed']} failed, version "
        f"{soak['version_before']} -> {soak['version_after']}"
    )
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2))
    print(f"figures: {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
