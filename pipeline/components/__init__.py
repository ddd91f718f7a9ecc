"""The pipeline's own components, one module each; TFX's stock components are used directly
in pipeline/pipeline.py."""
