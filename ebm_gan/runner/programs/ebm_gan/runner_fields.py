"""The runner's own fields of an ebm_gan config: counts and intervals, checked before anything
is built (each refusal a ConfigError naming the key, the value and what is allowed)."""

import os

from ebm_gan import parallel
from ebm_gan.runner import workdir
from ebm_gan.runner.registry import ConfigError, check_count, check_positive, reported_as

# Runner fields: positive integers, and integers >= 0 where 0 switches a feature off.
POSITIVE_INTS = ("steps", "batch_size", "log_every", "steps_per_dispatch", "eval_samples",
                 "critic_steps", "checkpoint_every", "max_to_keep")
OPTIONAL_EVERY = ("picture_every", "tensorboard_every")
MAX_STEPS = 2**31 - 1  # the TrainState's step is an int32 on the device


def check(config, dispatches) -> None:
  """Refuses a runner field (step counts, intervals, seed, evaluation sizes) out of range."""
  for key in POSITIVE_INTS:
    check_positive(config[key], key, integer=True)
  if config.steps > MAX_STEPS:
    raise ConfigError(f"steps={config.steps} is not allowed: the step counter is a 32-bit "
                      f"integer on the device, so at most {MAX_STEPS}.")
  if config.log_every > config.steps:
    raise ConfigError(f"log_every={config.log_every} is not allowed with steps={config.steps}: "
                      "no step would be written to metrics.jsonl (and no curves drawn); use "
                      f"1 <= log_every <= {config.steps}.")
  for key in OPTIONAL_EVERY:
    check_count(config[key], key, "off")
  check_count(config.seed, "seed")
  check_positive(config.divergence_bound, "divergence_bound")
  dispatches.get(config.dispatch, key="dispatch")
  check_count(config.evaluation.mcmc_steps, "evaluation.mcmc_steps", "no MCMC evaluation")
  check_positive(config.evaluation.mcmc_step_size, "evaluation.mcmc_step_size")
  check_count(config.evaluation.entropy_samples, "evaluation.entropy_samples",
              "no generator_entropy in the summary")
  if config.evaluation.entropy_samples == 1:
    raise ConfigError("evaluation.entropy_samples=1 is not allowed: the nearest-neighbour "
                      "entropy needs at least 2 samples (0 turns it off).")
  if config.dataset.startswith("stacked_"):  # where the mode-counting classifier is cached
    _check_classifier_cache(config)


def classifier_cache_dir(config) -> str:
  """``evaluation.classifier_cache`` expanded; '' means ``$XDG_CACHE_HOME/ebm_gan/classifiers``
  (``~/.cache/ebm_gan/classifiers``), shared by every run."""
  cache_home = os.environ.get("XDG_CACHE_HOME") or "~/.cache"
  folder = config.evaluation.classifier_cache or os.path.join(cache_home, "ebm_gan", "classifiers")
  return os.path.abspath(os.path.expanduser(folder))


def _check_classifier_cache(config) -> None:
  """Refuses, before training, a classifier cache that could not be written after it."""
  value = config.evaluation.classifier_cache
  if not isinstance(value, str):
    raise ConfigError(f"evaluation.classifier_cache={value!r} is not allowed; expected a folder "
                      "path (a string), or '' for ~/.cache/ebm_gan/classifiers.")
  reason = workdir.unwritable(classifier_cache_dir(config))
  if reason is not None:
    raise ConfigError(f"evaluation.classifier_cache={value!r} is not allowed: the mode-counting "
                      f"classifier is cached in {classifier_cache_dir(config)}, but {reason}. "
                      "Pass a folder you can write into ('' for ~/.cache/ebm_gan/classifiers).")


def devices(config, layouts) -> int:
  """``parallel.devices`` resolved (0: every device), checked against the batch size, and
  ``parallel.estimators`` among ``layouts``."""
  n = config.parallel.devices
  if isinstance(n, bool) or not isinstance(n, int) or n < 0:
    raise ConfigError(f"parallel.devices={n!r} is not allowed; expected an integer >= 0 "
                      "(0: every device).")
  layouts.get(config.parallel.estimators, key="parallel.estimators")
  with reported_as("parallel"):
    n = len(parallel.device_mesh(n or None).devices)
  with reported_as(None):
    parallel.check_divisible(config.batch_size, n)
  return n
