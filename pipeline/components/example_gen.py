"""TFX's ImportExampleGen, with the span and version recorded on the Examples artifact on
every orchestrator.

Locally, ExampleGen's driver resolves span and version and writes them on the output. On
Kubeflow Pipelines v2 the driver runs as the task's `preCacheCheck` hook and hands them to the
executor as `parameter_values` of its ExecutorOutput, but TFX 1.16's container entrypoint reads
only the deprecated `parameters` on the pipeline-spec 2.0 path
(tfx/orchestration/kubeflow/v2/container/kubeflow_v2_entrypoint_utils.py,
parse_execution_properties), so the Examples artifact carries no span there. This executor
resolves them itself when they are missing, exactly as the driver does
(tfx/components/example_gen/driver.py), and records them on the output.
"""

from tfx import v1 as tfx
from tfx.components.example_gen import driver, input_processor
from tfx.components.example_gen import utils as example_gen_utils
from tfx.components.example_gen.import_example_gen import executor as import_executor
from tfx.dsl.components.base import executor_spec
from tfx.proto import example_gen_pb2, range_config_pb2
from tfx.types import standard_component_specs as specs
from tfx.utils import proto_utils


def resolve_span(exec_properties: dict) -> dict:
    """exec_properties with span, version and fingerprint resolved from the input files and
    the split patterns set to that span, as ExampleGen's driver sets them; unchanged when
    the span is already there."""
    if exec_properties.get(example_gen_utils.SPAN_PROPERTY_NAME) is not None:
        return exec_properties
    input_config = example_gen_pb2.Input()
    proto_utils.json_to_proto(exec_properties[specs.INPUT_CONFIG_KEY], input_config)
    range_config = None
    if exec_properties.get(specs.RANGE_CONFIG_KEY):
        range_config = range_config_pb2.RangeConfig()
        proto_utils.json_to_proto(exec_properties[specs.RANGE_CONFIG_KEY], range_config)
    processor = input_processor.FileBasedInputProcessor(
        exec_properties[specs.INPUT_BASE_KEY], input_config.splits, range_config
    )
    span, version = processor.resolve_span_and_version()
    for split in input_config.splits:
        split.pattern = processor.get_pattern_for_span_version(split.pattern, span, version)
    return {
        **exec_properties,
        example_gen_utils.SPAN_PROPERTY_NAME: span,
        example_gen_utils.VERSION_PROPERTY_NAME: version,
        example_gen_utils.FINGERPRINT_PROPERTY_NAME: processor.get_input_fingerprint(span, version),
        specs.INPUT_CONFIG_KEY: proto_utils.proto_to_json(input_config),
    }


class SpanRecordingExecutor(import_executor.Executor):
    """ImportExampleGen's executor; the output Examples always carry span and version."""

    def Do(self, input_dict, output_dict, exec_properties) -> None:
        # The driver leaves `version` out when the input has none; update_output_artifact
        # reads it unconditionally.
        exec_properties = {
            example_gen_utils.VERSION_PROPERTY_NAME: None,
            **resolve_span(exec_properties),
        }
        super().Do(input_dict, output_dict, exec_properties)
        for examples in output_dict[specs.EXAMPLES_KEY]:
            driver.update_output_artifact(exec_properties, examples.mlmd_artifact)
            examples.span = exec_properties[example_gen_utils.SPAN_PROPERTY_NAME]
            version = exec_properties[example_gen_utils.VERSION_PROPERTY_NAME]
            if version is not None:
                examples.version = version


class SpannedImportExampleGen(tfx.components.ImportExampleGen):
    """ImportExampleGen whose executor is SpanRecordingExecutor (the KFP v2 compiler still
    sees a FileBasedExampleGen and adds the driver hook)."""

    EXECUTOR_SPEC = executor_spec.BeamExecutorSpec(SpanRecordingExecutor)
