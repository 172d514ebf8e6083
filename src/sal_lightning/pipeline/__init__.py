"""The four-step SAL-Net pipeline: a typed configuration, its steps, the runner (manifest, resume)."""

from sal_lightning.pipeline.config import PipelineConfig, build_pipeline, build_steps, load_config
from sal_lightning.pipeline.manifest import config_hash
from sal_lightning.pipeline.runner import Pipeline, Step, StepContext

__all__ = [
    "Pipeline",
    "PipelineConfig",
    "Step",
    "StepContext",
    "build_pipeline",
    "build_steps",
    "config_hash",
    "load_config",
]
