"""The decoupled two-adapter recipe and its baselines: data, rewards, SFT, GRPO, compose, evaluate, experiment.

Importing this package is light: torch, transformers, peft and trl are imported inside the functions that train
or generate (the `train` extra)."""

from train.config import ConfigError, TrainConfig, load_config
from train.experiment import run_experiment
from train.recipe import MODES, run_train_decoupled, train_run
from train.rewards import parse_completion

__all__ = ["MODES", "ConfigError", "TrainConfig", "load_config", "parse_completion", "run_experiment",
           "run_train_decoupled", "train_run"]
