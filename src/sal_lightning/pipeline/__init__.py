"""The four-step SAL-Net pipeline: steps, runner, manifest, resume."""

from sal_lightning.pipeline.runner import Pipeline, Step, StepContext, config_hash

__all__ = ["Pipeline", "Step", "StepContext", "config_hash"]
