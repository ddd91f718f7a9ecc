"""Windows of months: the Examples of several months gathered into one artifact with named
splits (e.g. `train` = the window's older months, `validation` = its last month).

The KFP v2 compiler takes one channel per input and no channel unions, and TFX's rolling-window
resolver (SpanRangeStrategy) does not compile there, so the months arrive as numbered inputs
(`month_0`, `month_1`, ...) and the window is fixed when the pipeline is built: the same graph
runs on LocalDagRunner and Kubeflow. Lineage in ML Metadata goes window -> the months' Examples,
each with its span.
"""

from __future__ import annotations

import json
import os
from collections.abc import Mapping, Sequence
from typing import ClassVar

from tfx import types
from tfx.dsl.components.base import base_component, base_executor, executor_spec
from tfx.types import artifact_utils, standard_artifacts
from tfx.types.component_spec import ChannelParameter, ComponentSpec, ExecutionParameter

from pipeline.constants import MAX_MONTHS, MONTH_SPLIT
from pipeline.months import Month

SPANS_PROPERTY = "spans"
"""Custom property of a window: JSON {split: [span, ...]}."""


def month_keys(count: int = MAX_MONTHS) -> list[str]:
    return [f"month_{i}" for i in range(count)]


def month_inputs(artifact_type) -> dict[str, ChannelParameter]:
    """Spec INPUTS for up to MAX_MONTHS optional per-month channels."""
    return {key: ChannelParameter(type=artifact_type, optional=True) for key in month_keys()}


def month_channels(channels: Sequence[types.BaseChannel]) -> dict[str, types.BaseChannel]:
    """`month_<i>` -> channel, in the order given; ValueError beyond MAX_MONTHS."""
    if len(channels) > MAX_MONTHS:
        raise ValueError(f"at most {MAX_MONTHS} months per window, got {len(channels)}")
    return dict(zip(month_keys(len(channels)), channels, strict=True))


class ExamplesWindowSpec(ComponentSpec):
    PARAMETERS: ClassVar[dict] = {
        "splits": ExecutionParameter(type=str)
    }  # JSON {split: [span, ...]}
    INPUTS: ClassVar[dict] = month_inputs(standard_artifacts.Examples)
    OUTPUTS: ClassVar[dict] = {"examples": ChannelParameter(type=standard_artifacts.Examples)}


class ExamplesWindowExecutor(base_executor.BaseExecutor):
    """Copies each month's `month` split into the window's split that lists its span."""

    def Do(self, input_dict, output_dict, exec_properties) -> None:
        import tensorflow as tf

        splits: dict[str, list[int]] = json.loads(exec_properties["splits"])
        by_span = {}
        for artifacts in input_dict.values():
            for examples in artifacts:
                if examples.span in by_span:
                    raise ValueError(f"two Examples artifacts for span {examples.span}")
                by_span[examples.span] = examples
        missing = sorted({s for spans in splits.values() for s in spans} - set(by_span))
        if missing:
            raise ValueError(
                f"the window needs months {[str(Month.from_span(s)) for s in missing]}, "
                f"which no input holds (inputs: {sorted(by_span)})"
            )
        window = artifact_utils.get_single_instance(output_dict["examples"])
        window.split_names = artifact_utils.encode_split_names(list(splits))
        for split, spans in splits.items():
            target = os.path.join(window.uri, f"Split-{split}")
            tf.io.gfile.makedirs(target)
            for span in spans:
                source = artifact_utils.get_split_uri([by_span[span]], MONTH_SPLIT)
                for name in tf.io.gfile.listdir(source):
                    tf.io.gfile.copy(
                        os.path.join(source, name), os.path.join(target, f"{span}-{name}")
                    )
        first = by_span[splits[next(iter(splits))][0]]
        for name, value in first.mlmd_artifact.custom_properties.items():
            if name in ("file_format", "payload_format"):
                window.mlmd_artifact.custom_properties[name].CopyFrom(value)
        window.set_string_custom_property(SPANS_PROPERTY, json.dumps(splits))


class ExamplesWindow(base_component.BaseComponent):
    """One Examples artifact whose splits gather the given months' Examples.

    `months`: the months' Examples channels (each artifact carries its span);
    `splits`: split name -> the months it holds.
    """

    SPEC_CLASS = ExamplesWindowSpec
    EXECUTOR_SPEC = executor_spec.ExecutorClassSpec(ExamplesWindowExecutor)

    def __init__(self, months: Sequence[types.BaseChannel], splits: Mapping[str, Sequence[Month]]):
        spans = {split: [m.span for m in sorted(ms)] for split, ms in splits.items()}
        super().__init__(
            spec=ExamplesWindowSpec(
                splits=json.dumps(spans),
                examples=types.Channel(type=standard_artifacts.Examples),
                **month_channels(months),
            )
        )


def window_spans(examples) -> dict[str, list[int]]:
    """Split -> spans of a window artifact (the inverse of ExamplesWindow's `splits`)."""
    return json.loads(examples.get_string_custom_property(SPANS_PROPERTY) or "{}")
