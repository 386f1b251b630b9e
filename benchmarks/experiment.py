"""The default experiment's compiled chunk, for the benchmarks (shared by torch_reference.py,
utilisation.py and train_step.py's host-side curve).

``default_chunk(overrides, n)`` resolves experiments/configs/default.py with the
given ``(key, value)`` overrides exactly as ``python -m experiments.run`` does, and
compiles ``eg.make_chunk(eg.make_train_step(...), n)`` the way the runner's
'ebm_gan' program does for one device.
"""

from __future__ import annotations

import os

import jax

import ebm_gan as eg
from ebm_gan.runner import cli
from ebm_gan.runner.programs.ebm_gan import config as config_lib

DEFAULT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                       "experiments", "configs", "default.py")


def default_experiment(overrides=()):
  """The checked ``Experiment`` (game, tx, dataset, config) of the default config + overrides."""
  return config_lib.build(cli.resolve_config(DEFAULT, list(overrides) + [("parallel.devices", "1")]))


def initial_state(exp, tx=None):
  """The run's initial TrainState (seed 0), ``tx`` replacing the config's optimiser if given."""
  tx = exp.tx if tx is None else tx
  c, sample = exp.config, exp.dataset.sample
  return jax.jit(lambda k: eg.init_state(exp.game, tx, k, sample(k, c.batch_size)))(
      jax.random.PRNGKey(c.seed))


def train_step(exp, tx=None):
  """The config's ``step(state, batch) -> (state, metrics)``."""
  c = exp.config
  return eg.make_train_step(exp.game, exp.tx if tx is None else tx, c.scheme,
                            critic_steps=c.critic_steps)


def default_chunk(exp, n, tx=None, donate=False):
  """``(compiled n-step chunk state -> (state, metrics), its initial state)``; ``donate``
  compiles it with the state's buffers donated (``donate_argnums=0``)."""
  state = initial_state(exp, tx)
  chunk = eg.make_chunk(train_step(exp, tx), n, exp.dataset.sample, exp.config.batch_size)
  jitted = jax.jit(chunk, donate_argnums=0) if donate else jax.jit(chunk)
  return jitted.lower(state).compile(), state
