"""`curate run`: the whole pipeline in a run directory (config, stage table, runner, run-dir reader)."""

from curate.pipeline.config import ConfigError, PipelineConfig, load_config, parse_config
from curate.pipeline.rundir import RunDir
from curate.pipeline.runner import PipelineError, run_pipeline
from curate.pipeline.stages import STAGE_NAMES, STAGES, Step

__all__ = ["STAGES", "STAGE_NAMES", "ConfigError", "PipelineConfig", "PipelineError", "RunDir", "Step", "load_config",
           "parse_config", "run_pipeline"]
