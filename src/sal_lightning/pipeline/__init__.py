"""The four-step SAL-Net pipeline: a typed configuration, its steps (defined with their stages), the
runner (manifest, resume)."""

from sal_lightning.pipeline.config import PipelineSettings, build_pipeline, build_steps, load_config
from sal_lightning.pipeline.manifest import config_hash
from sal_lightning.pipeline.runner import Pipeline
from sal_lightning.stages.step import Step, StepContext, Workdir

__all__ = [
    "Pipeline",
    "PipelineSettings",
    "Step",
    "StepContext",
    "Workdir",
    "build_pipeline",
    "build_steps",
    "config_hash",
    "load_config",
]
