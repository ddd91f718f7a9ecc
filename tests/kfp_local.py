"""An offline executor for a compiled KFP v2 / Vertex AI PipelineJob: a TEST HELPER.

It runs a spec written by `kubeflow_runner.compile_pipeline` on this machine, task by task, with
the spec's own container commands, so the production wiring (what the compiler emits, what TFX's
v2 container entrypoint parses, what flows between tasks) is exercised with real TFX, TF and
Beam. It is not an orchestrator for production use.

What it emulates (the KFP v2 launcher / Vertex AI Pipelines service):
- The DAG: tasks in dependency order (`dependentTasks` and `taskOutputArtifact` producers).
- Per container task, the `ExecutorInput` the launcher fills: `inputs.parameters` (and their
  `parameter_values` twins) from the task's runtime constants or pipeline parameters;
  `inputs.artifacts` from upstream outputs with their resource `name`, `type`, `uri` and
  `metadata` (properties and custom properties, as the launcher reads them back from ML
  Metadata); `outputs.artifacts` with fresh URIs under the pipeline root
  (`<root>/<project number>/<job id>/<task>_<n>/<output key>`, Vertex's layout, no name);
  `outputs.output_file` for the ExecutorOutput. Each output URI is created as a folder first:
  on a bucket, writing `<uri>/file` needs no directory, on a local disk it does.
- The container command and args of the task's executor in `deploymentSpec`, with `python` as
  this interpreter and the launcher placeholders substituted (`{{$}}` = the ExecutorInput JSON,
  `{{$.inputs.parameters['k']}}`, `{{$.inputs.artifacts['k'].uri}}`,
  `{{$.outputs.artifacts['k'].uri}}`, `{{$.outputs.output_file}}`).
- `lifecycle.preCacheCheck` (the driver of a FileBasedExampleGen, e.g. each month's
  ingestion): run first with the same ExecutorInput; the parameters of its ExecutorOutput
  (span, version, fingerprint, resolved input_config) enter the cache key, so unchanged input
  files are a cache hit. The executor then gets the task's own ExecutorInput, and the driver's
  file stays at `output_file`, where TFX's entrypoint reads it (merging its
  `parameter_values`). Whether the service also copies the driver's values into the executor's
  `parameters` and output metadata is not documented beyond TFX's driver docstring;
  `driver_output_to_executor=True` emulates that reading instead.
- The ExecutorOutput written by each task: its artifacts' metadata (and URI, if set) become the
  published output artifacts, which get a resource name `projects/.../artifacts/<n>`; that is
  how the Examples' span, the Evaluator's `blessed` / `current_model_id` and the Pusher's
  `pushed` / `pushed_version` reach downstream tasks and later jobs.
- Resolver tasks (`executor.resolver.outputArtifactQueries`): the filters TFX's compiler emits
  for LatestArtifactStrategy and LatestBlessedModelStrategy (`schema_title="..."`,
  `state=LIVE`, `metadata.<key>.number_value=<v>`, `name="..."`, with `{{$.inputs.artifacts[...]
  .metadata[...]}}` placeholders) are evaluated against every artifact published by earlier
  tasks and jobs of this helper's store, newest first; no match gives an empty output.
- Caching: a task with `cachingOptions.enableCache` (and the job's caching on) whose cache key
  (component spec, container, input artifact names, input parameters, output definitions: KFP's
  key) matches an earlier successful execution reuses that execution's output artifacts
  (same names, URIs and metadata) without running.
- Paths: `gs://<bucket>/...` in the spec is rewritten to `<root>/gcs/<bucket>/...` before
  execution, and image paths (`/pipeline/...`, where the Dockerfile copies the project) to the
  project checkout; `path_map` records every rewrite. The job's cwd is the mapped WORKDIR.

What it does not emulate: container isolation (every task runs in this machine's venv, with its
packages, and shares its filesystem), resource requests/limits, retries, service accounts,
Vertex custom jobs, Dataflow, pipeline-level runtime parameters given at submission beyond
`parameter_values`, output parameters, artifact lineage queries beyond the filters above,
parallel execution (tasks run one at a time), and the exact MLMD semantics of `state` (every
published artifact is LIVE).
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import pathlib
import re
import subprocess
import sys
import time
from collections.abc import Callable, Mapping
from typing import Any

from google.protobuf import json_format
from kfp.pipeline_spec import pipeline_spec_pb2 as pb

PROJECT = "offline-project"
PROJECT_NUMBER = "000000000000"
REGION = "offline-region"
TAIL_LINES = 40

_PLACEHOLDER = re.compile(r"\{\{\$[^}]*\}\}")


class TaskFailed(RuntimeError):
    """A task's container exited non-zero (or wrote no usable ExecutorOutput)."""


class JobFailed(RuntimeError):
    """One or more tasks of a job failed; the message names each with its last log lines."""


# ---- paths ----


@dataclasses.dataclass
class PathMap:
    """gs:// buckets to a local folder and image paths to local folders; `applied` records
    every (original, local) prefix rewritten in the spec."""

    gcs_root: pathlib.Path
    image_paths: Mapping[str, str]  # "/pipeline" -> "/work/main"
    applied: dict[str, str] = dataclasses.field(default_factory=dict)

    def local(self, uri: str) -> str:
        """The local path of a gs:// URI or an image path (others unchanged)."""
        return self._rewrite(uri)

    def _rewrite(self, text: str) -> str:
        for image, local in self.image_paths.items():
            # An absolute image path: at the start, or after a quote / space / `=`, never
            # inside another path (gs://b/pipeline/ stays a bucket path).
            pattern = re.compile(r"(^|(?<=[\"'\s=]))" + re.escape(image.rstrip("/")) + r"(?=/)")
            if pattern.search(text):
                self.applied[image] = local
                text = pattern.sub(local.rstrip("/"), text)

        def bucket(match: re.Match) -> str:
            local = str(self.gcs_root / match.group(1))
            self.applied[f"gs://{match.group(1)}"] = local
            return local

        return re.sub(r"gs://([a-z0-9][a-z0-9._-]*)", bucket, text)

    def rewrite_tree(self, value: Any) -> Any:
        """Every string in a JSON tree rewritten (JSON embedded in strings included)."""
        if isinstance(value, str):
            return self._rewrite(value)
        if isinstance(value, list):
            return [self.rewrite_tree(v) for v in value]
        if isinstance(value, dict):
            return {k: self.rewrite_tree(v) for k, v in value.items()}
        return value


# ---- the metadata store (what the launcher keeps in ML Metadata) ----


@dataclasses.dataclass
class ArtifactRecord:
    name: str  # projects/.../metadataStores/default/artifacts/<n>
    schema_title: str
    type: dict  # ArtifactTypeSchema as JSON
    uri: str
    metadata: dict
    job: str
    task: str
    key: str

    def runtime_artifact(self, type_: dict | None = None) -> dict:
        return {
            "name": self.name,
            "type": type_ or self.type,
            "uri": self.uri,
            "metadata": self.metadata,
        }


class MetadataStore:
    """Artifacts and cached executions of every job of this helper, kept in a JSON file."""

    def __init__(self, path: pathlib.Path):
        self.path = path
        if path.exists():
            data = json.loads(path.read_text())
            self.artifacts = [ArtifactRecord(**a) for a in data["artifacts"]]
            self.cache = data["cache"]
        else:
            self.artifacts, self.cache = [], {}

    def save(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self.path.write_text(
            json.dumps(
                {"artifacts": [dataclasses.asdict(a) for a in self.artifacts], "cache": self.cache},
                indent=1,
            )
        )

    def publish(self, schema_title, type_, uri, metadata, job, task, key) -> ArtifactRecord:
        name = (
            f"projects/{PROJECT}/locations/{REGION}/metadataStores/default/artifacts/"
            f"{len(self.artifacts) + 1}"
        )
        record = ArtifactRecord(name, schema_title, type_, uri, metadata, job, task, key)
        self.artifacts.append(record)
        return record

    def by_name(self, name: str) -> ArtifactRecord:
        return next(a for a in self.artifacts if a.name == name)

    def query(self, filter_: str) -> list[ArtifactRecord]:
        """The artifacts matching a resolver filter, newest first (the filters TFX's KFP v2
        compiler emits: clauses joined by AND)."""
        clauses = [c.strip() for c in filter_.split(" AND ")]
        return [a for a in reversed(self.artifacts) if all(_matches(a, c) for c in clauses)]


def _matches(a: ArtifactRecord, clause: str) -> bool:
    """One clause of a resolver filter: schema_title, state, metadata.<key>.<kind>, name."""
    if m := re.fullmatch(r'schema_title="([^"]*)"', clause):
        return a.schema_title == m.group(1)
    if clause == "state=LIVE":
        return True  # every published artifact is LIVE here
    if m := re.fullmatch(r"metadata\.(\w+)\.number_value=([-\d.]+)", clause):
        value = a.metadata.get(m.group(1))
        return isinstance(value, int | float) and float(value) == float(m.group(2))
    if m := re.fullmatch(r'metadata\.(\w+)\.string_value="([^"]*)"', clause):
        return a.metadata.get(m.group(1)) == m.group(2)
    if m := re.fullmatch(r'name="([^"]*)"', clause):
        return a.name == m.group(1)
    raise NotImplementedError(f"resolver filter clause not emulated: {clause!r}")


def schema_title(type_: dict) -> str:
    if "schemaTitle" in type_:
        return type_["schemaTitle"]
    match = re.search(r"^title:\s*(\S+)", type_.get("instanceSchema", ""), re.M)
    return match.group(1) if match else "tfx.Artifact"


# ---- results ----


@dataclasses.dataclass
class TaskResult:
    name: str
    state: str  # "executed", "cached", "resolved", "failed", "skipped"
    outputs: dict[str, list[ArtifactRecord]] = dataclasses.field(default_factory=dict)
    seconds: float = 0.0
    log: pathlib.Path | None = None
    error: str = ""


@dataclasses.dataclass
class JobResult:
    job_id: str
    tasks: dict[str, TaskResult]
    seconds: float

    def states(self) -> dict[str, str]:
        return {name: t.state for name, t in self.tasks.items()}

    def failures(self) -> dict[str, str]:
        return {n: t.error for n, t in self.tasks.items() if t.state in ("failed", "skipped")}

    def artifact(self, task: str, key: str) -> ArtifactRecord | None:
        artifacts = self.tasks[task].outputs.get(key) or []
        return artifacts[0] if artifacts else None

    def report(self) -> str:
        lines = [f"job {self.job_id} ({self.seconds:.0f} s):"]
        for t in self.tasks.values():
            lines.append(f"  {t.name}: {t.state} ({t.seconds:.1f} s)")
            if t.error:
                lines.append("    " + t.error.replace("\n", "\n    "))
        return "\n".join(lines)


# ---- the runner ----


def _legacy_value(value: Any) -> dict:
    """A pipeline_spec Value (the deprecated `parameters` map) as JSON."""
    if isinstance(value, bool):
        return {"intValue": str(int(value))}
    if isinstance(value, int):
        return {"intValue": str(value)}
    if isinstance(value, float):
        return {"intValue": str(int(value))} if value.is_integer() else {"doubleValue": value}
    return {"stringValue": value if isinstance(value, str) else json.dumps(value)}


def _plain(value_json: dict) -> Any:
    """A legacy Value or a struct Value, as JSON, to a plain Python value."""
    if "intValue" in value_json:
        return int(value_json["intValue"])
    if "doubleValue" in value_json:
        return float(value_json["doubleValue"])
    if "stringValue" in value_json:
        return value_json["stringValue"]
    return value_json  # struct Value: already plain after MessageToDict of a Struct/Value


class OfflineRunner:
    """Runs jobs of one compiled PipelineJob spec on this machine (see the module docstring).

    root: everything the jobs write (mapped buckets, pipeline root, logs, metadata store).
    image_paths: image path -> local folder (e.g. {"/pipeline": "/work/main"}).
    arg_replacements: exact container args swapped before running (e.g. Beam's
      `--direct_running_mode=multi_processing` -> `in_memory` on a small machine); recorded
      in `self.replaced_args`. None of the spec's logic changes with these.
    parameter_overrides: {task: {parameter: value}} constants replaced in the spec (test
      knobs the production command line does not offer); recorded in the spec copy on disk.
    """

    def __init__(
        self,
        spec_file: str | os.PathLike,
        root: str | os.PathLike,
        image_paths: Mapping[str, str],
        workdir: str | os.PathLike,
        arg_replacements: Mapping[str, str] | None = None,
        parameter_overrides: Mapping[str, Mapping[str, Any]] | None = None,
        driver_output_to_executor: bool = False,
        python: str = sys.executable,
        env: Mapping[str, str] | None = None,
        echo: Callable[[str], None] | None = print,
    ):
        self.root = pathlib.Path(root)
        self.root.mkdir(parents=True, exist_ok=True)
        self.paths = PathMap(self.root / "gcs", dict(image_paths))
        self.workdir = str(workdir)
        self.python = python
        self.driver_output_to_executor = driver_output_to_executor
        self.arg_replacements = dict(arg_replacements or {})
        self.replaced_args: list[tuple[str, str, str]] = []
        self.env = {**os.environ, "TF_CPP_MIN_LOG_LEVEL": "2", **(env or {})}
        self.echo = echo or (lambda _: None)
        job = pb.PipelineJob()
        json_format.Parse(pathlib.Path(spec_file).read_text(), job, ignore_unknown_fields=True)
        raw = json_format.MessageToDict(job)
        for task, params in (parameter_overrides or {}).items():
            task_params = raw["pipelineSpec"]["root"]["dag"]["tasks"][task]["inputs"]["parameters"]
            for name, value in params.items():
                if name not in task_params:
                    raise KeyError(f"task {task} has no parameter {name!r}")
                task_params[name] = {"runtimeValue": {"constantValue": _legacy_value(value)}}
        self.job = self.paths.rewrite_tree(raw)
        (self.root / "spec.local.json").write_text(json.dumps(self.job, indent=1))
        self.spec = self.job["pipelineSpec"]
        self.pipeline_root = self.job.get("runtimeConfig", {}).get("gcsOutputDirectory") or str(
            self.root / "pipeline_root"
        )
        self.store = MetadataStore(self.root / "metadata.json")
        self.jobs_run = len({a.job for a in self.store.artifacts})

    # -- the DAG --

    @property
    def tasks(self) -> dict[str, dict]:
        return self.spec["root"]["dag"]["tasks"]

    def order(self) -> list[str]:
        """Tasks in dependency order (ties by name, for reproducible runs)."""
        deps = {name: self._upstream(task) for name, task in self.tasks.items()}
        done: list[str] = []
        while len(done) < len(deps):
            ready = sorted(n for n, d in deps.items() if n not in done and d <= set(done))
            if not ready:
                raise ValueError(f"cycle among {sorted(set(deps) - set(done))}")
            done.append(ready[0])
        return done

    def run_job(
        self, job_id: str | None = None, enable_caching: bool = True, check: bool = True
    ) -> JobResult:
        """One job of the spec. check: raise JobFailed naming every failed task; else the
        result records failures (and skips their downstream tasks) for the caller to assert."""
        self.jobs_run += 1
        job_id = job_id or f"{self.spec['pipelineInfo']['name']}-{self.jobs_run:03d}"
        started = time.monotonic()
        results: dict[str, TaskResult] = {}
        for n, name in enumerate(self.order(), 1):
            task = self.tasks[name]
            upstream_failed = [
                u for u in self._upstream(task) if results[u].state in ("failed", "skipped")
            ]
            if upstream_failed:
                results[name] = TaskResult(
                    name, "skipped", error=f"not run: upstream {upstream_failed} did not succeed"
                )
                continue
            t0 = time.monotonic()
            try:
                result = self._run_task(job_id, n, name, task, results, enable_caching)
            except TaskFailed as e:
                result = TaskResult(name, "failed", error=str(e))
            result.seconds = time.monotonic() - t0
            results[name] = result
            self.echo(f"[kfp-local] {job_id} {name}: {result.state} in {result.seconds:.1f} s")
            self.store.save()
        job = JobResult(job_id, results, time.monotonic() - started)
        if check and job.failures():
            raise JobFailed(job.report())
        return job

    @staticmethod
    def _upstream(task: dict) -> set[str]:
        """The tasks a task waits for: `dependentTasks` and its artifacts' producers."""
        up = set(task.get("dependentTasks", []))
        for spec in task.get("inputs", {}).get("artifacts", {}).values():
            if "taskOutputArtifact" in spec:
                up.add(spec["taskOutputArtifact"]["producerTask"])
        return up

    # -- one task --

    def _component(self, task: dict) -> dict:
        return self.spec["components"][task["componentRef"]["name"]]

    def _executor(self, task: dict) -> dict:
        label = self._component(task)["executorLabel"]
        return self.spec["deploymentSpec"]["executors"][label]

    def _inputs(self, task: dict, results: Mapping[str, TaskResult]) -> tuple[dict, dict]:
        """Input parameters (plain values) and artifacts (RuntimeArtifact JSON lists)."""
        component = self._component(task)
        definitions = component.get("inputDefinitions", {})
        parameters = {}
        for key, spec in task.get("inputs", {}).get("parameters", {}).items():
            if "runtimeValue" in spec:
                value = spec["runtimeValue"]
                parameters[key] = (
                    _plain(value["constantValue"])
                    if "constantValue" in value
                    else value.get("constant")
                )
            elif "componentInputParameter" in spec:
                parameters[key] = self._pipeline_parameter(spec["componentInputParameter"])
            else:
                raise NotImplementedError(f"input parameter spec not emulated: {spec}")
        for key, spec in definitions.get("parameters", {}).items():
            if key not in parameters and "defaultValue" in spec:
                parameters[key] = spec["defaultValue"]
        artifacts = {}
        for key, spec in task.get("inputs", {}).get("artifacts", {}).items():
            if "taskOutputArtifact" not in spec:
                raise NotImplementedError(f"input artifact spec not emulated: {spec}")
            producer = spec["taskOutputArtifact"]
            records = results[producer["producerTask"]].outputs.get(
                producer["outputArtifactKey"], []
            )
            type_ = definitions.get("artifacts", {}).get(key, {}).get("artifactType")
            artifacts[key] = [r.runtime_artifact(type_) for r in records]
        return parameters, artifacts

    def _pipeline_parameter(self, name: str) -> Any:
        runtime = self.job.get("runtimeConfig", {})
        if name in runtime.get("parameterValues", {}):
            return runtime["parameterValues"][name]
        if name in runtime.get("parameters", {}):
            return _plain(runtime["parameters"][name])
        spec = self.spec["root"].get("inputDefinitions", {}).get("parameters", {}).get(name, {})
        if "defaultValue" in spec:
            return spec["defaultValue"]
        raise KeyError(f"pipeline parameter {name!r} has no value")

    def _run_task(self, job_id, n, name, task, results, enable_caching) -> TaskResult:
        executor = self._executor(task)
        parameters, artifacts = self._inputs(task, results)
        if "resolver" in executor:
            return self._resolve(name, executor["resolver"], artifacts)
        if "container" not in executor:
            raise NotImplementedError(f"{name}: executor kind not emulated: {list(executor)}")
        container = executor["container"]
        component = self._component(task)
        task_root = f"{self.pipeline_root}/{PROJECT_NUMBER}/{job_id}/{name}_{n}"
        outputs = {
            key: [{"type": spec["artifactType"], "uri": f"{task_root}/{key}", "metadata": {}}]
            for key, spec in component.get("outputDefinitions", {}).get("artifacts", {}).items()
        }
        if component.get("outputDefinitions", {}).get("parameters"):
            raise NotImplementedError(f"{name}: output parameters are not emulated")
        for artifact_list in outputs.values():  # an object store needs no directories
            for artifact in artifact_list:
                os.makedirs(artifact["uri"], exist_ok=True)
        output_file = f"{task_root}/executor_output.json"
        log_dir = self.root / "logs" / job_id
        log_dir.mkdir(parents=True, exist_ok=True)

        pre = container.get("lifecycle", {}).get("preCacheCheck")
        if pre:  # FileBasedExampleGen's driver: span, version, fingerprint, then the cache check
            executor_input = self._executor_input(parameters, artifacts, outputs, output_file)
            self._exec(
                name, pre["command"], pre["args"], executor_input, log_dir / f"{name}.driver.log"
            )
            driver_output = self._read_output(name, output_file, log_dir / f"{name}.driver.log")
            resolved = {**parameters, **driver_output.get("parameterValues", {})}
            if self.driver_output_to_executor:
                parameters = resolved
                for key, artifact_list in driver_output.get("artifacts", {}).items():
                    for provisioned, written in zip(
                        outputs.get(key, []), artifact_list.get("artifacts", []), strict=False
                    ):
                        provisioned["metadata"].update(written.get("metadata", {}))
        else:
            resolved = parameters

        cache_key = self._cache_key(component, container, resolved, artifacts)
        cacheable = enable_caching and task.get("cachingOptions", {}).get("enableCache", False)
        if cacheable and cache_key in self.store.cache:
            hit = self.store.cache[cache_key]
            return TaskResult(
                name,
                "cached",
                {k: [self.store.by_name(a) for a in names] for k, names in hit.items()},
            )

        executor_input = self._executor_input(parameters, artifacts, outputs, output_file)
        log = log_dir / f"{name}.log"
        self._exec(name, container["command"], container.get("args", []), executor_input, log)
        written = self._read_output(name, output_file, log).get("artifacts", {})
        published = {}
        for key, provisioned in outputs.items():
            records = []
            for i, artifact in enumerate(provisioned):
                out = (written.get(key, {}).get("artifacts") or [{}] * len(provisioned))[i]
                records.append(
                    self.store.publish(
                        schema_title(artifact["type"]),
                        artifact["type"],
                        out.get("uri") or artifact["uri"],
                        out.get("metadata", artifact["metadata"]),
                        job_id,
                        name,
                        key,
                    )
                )
            published[key] = records
        self.store.cache[cache_key] = {k: [r.name for r in v] for k, v in published.items()}
        return TaskResult(name, "executed", published, log=log)

    def _resolve(self, name: str, resolver: dict, artifacts: dict) -> TaskResult:
        """Emulates the service's resolver: each output is the newest artifact matching its
        filter; a filter whose placeholder has no input artifact to read matches nothing."""
        outputs = {}
        for key, query in resolver.get("outputArtifactQueries", {}).items():
            try:
                filter_ = _PLACEHOLDER.sub(
                    lambda m: str(self._placeholder(m.group(0), {}, artifacts, {}, "")),
                    query["filter"],
                )
            except LookupError:
                outputs[key] = []
                continue
            outputs[key] = self.store.query(filter_)[:1]
        return TaskResult(name, "resolved", outputs)

    @staticmethod
    def _cache_key(component, container, parameters, artifacts) -> str:
        """KFP's cache key: input artifact names, input parameters, output definitions and
        the container (image, command, args), plus the component spec."""
        key = {
            "component": component,
            "container": {k: container.get(k) for k in ("image", "command", "args")},
            "parameters": parameters,
            "artifacts": {k: [a["name"] for a in v] for k, v in artifacts.items()},
        }
        return hashlib.sha256(json.dumps(key, sort_keys=True).encode()).hexdigest()

    @staticmethod
    def _executor_input(parameters, artifacts, outputs, output_file) -> dict:
        message = {
            "inputs": {
                "parameters": {k: _legacy_value(v) for k, v in parameters.items()},
                "parameterValues": parameters,
                "artifacts": {k: {"artifacts": v} for k, v in artifacts.items()},
            },
            "outputs": {
                "artifacts": {k: {"artifacts": v} for k, v in outputs.items()},
                "outputFile": output_file,
            },
        }
        json_format.ParseDict(message, pb.ExecutorInput())  # fail here, not in the container
        return message

    def _placeholder(self, text, parameters, artifacts, outputs, executor_json) -> Any:
        if text == "{{$}}":
            return executor_json
        patterns = {
            r"\{\{\$\.inputs\.parameters\['([^']+)'\]\}\}": lambda k: parameters[k],
            r"\{\{\$\.inputs\.artifacts\['([^']+)'\]\.uri\}\}": lambda k: artifacts[k][0]["uri"],
            r"\{\{\$\.outputs\.artifacts\['([^']+)'\]\.uri\}\}": lambda k: outputs[k][0]["uri"],
            r"\{\{\$\.inputs\.artifacts\['([^']+)'\]\.metadata\['([^']+)'\]\}\}": (
                lambda k, m: artifacts[k][0]["metadata"][m]
            ),
        }
        for pattern, get in patterns.items():
            if m := re.fullmatch(pattern, text):
                return get(*m.groups())
        raise NotImplementedError(f"launcher placeholder not emulated: {text}")

    def _exec(self, name, command, args, executor_input, log: pathlib.Path) -> None:
        executor_json = json.dumps(executor_input)
        inputs = executor_input["inputs"]
        plain_artifacts = {k: v["artifacts"] for k, v in inputs["artifacts"].items()}
        plain_outputs = {
            k: v["artifacts"] for k, v in executor_input["outputs"]["artifacts"].items()
        }
        output_file = executor_input["outputs"]["outputFile"]

        def substitute(arg: str) -> str:
            if arg == "{{$.outputs.output_file}}":
                return output_file
            return _PLACEHOLDER.sub(
                lambda m: str(
                    self._placeholder(
                        m.group(0),
                        inputs["parameterValues"],
                        plain_artifacts,
                        plain_outputs,
                        executor_json,
                    )
                ),
                arg,
            )

        argv = [substitute(a) for a in [*command, *args]]
        if argv and os.path.basename(argv[0]) in ("python", "python3"):
            argv[0] = self.python
        replaced = []
        for i, arg in enumerate(argv):
            if arg in self.arg_replacements:
                replaced.append((name, arg, self.arg_replacements[arg]))
                argv[i] = self.arg_replacements[arg]
        self.replaced_args.extend(replaced)
        (log.parent / (log.stem + ".argv.json")).write_text(json.dumps(argv, indent=1))
        with open(log, "wb") as out:
            code = subprocess.run(
                argv, cwd=self.workdir, env=self.env, stdout=out, stderr=subprocess.STDOUT
            ).returncode
        if code != 0:
            raise TaskFailed(f"task {name} exited with {code}; log {log}:\n{_tail(log)}")

    @staticmethod
    def _read_output(name: str, output_file: str, log: pathlib.Path) -> dict:
        path = pathlib.Path(output_file)
        if not path.exists():
            raise TaskFailed(f"task {name} wrote no ExecutorOutput at {output_file}:\n{_tail(log)}")
        output = pb.ExecutorOutput()
        json_format.Parse(path.read_text(), output, ignore_unknown_fields=True)
        return json_format.MessageToDict(output)


def _tail(log: pathlib.Path, lines: int = TAIL_LINES) -> str:
    text = log.read_text(errors="replace").splitlines()
    return "\n".join(text[-lines:])
