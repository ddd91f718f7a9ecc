"""Typed config, data preparation, the TFX pipeline definition and the run summary."""


def __getattr__(name: str):
    """`pipeline.MobileModels`, imported only when asked for.

    KFP v2 compiles a custom artifact type to a schema title `<namespace>.<Title>` (one dot),
    and TFX's v2 container entrypoint rebuilds the class by importing that title as a path
    (tfx/orchestration/kubeflow/v2/container/kubeflow_v2_entrypoint_utils.py,
    _retrieve_class_path). So the title is this package plus the class name, resolved lazily
    to keep `import pipeline.config` free of TFX.
    """
    if name == "MobileModels":
        from pipeline.components.mobile_export import MobileModels

        return MobileModels
    raise AttributeError(f"module 'pipeline' has no attribute {name!r}")
