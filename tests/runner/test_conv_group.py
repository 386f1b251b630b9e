"""A sweep group of conv members under the per_step dispatch: one program, each member's own
mathematics (ebm_gan.runner.programs.ebm_gan.trainables.unrolled_members).

vmap would batch each member's convolutions into one grouped convolution, which XLA:CPU runs
about 2x slower per member (benchmarks/conv_group.py) and which adds its sums in another order:
measured with vmap, the members' metrics differ from their own runs by up to 6.1e-5 after 3
steps and their parameters by 3.0e-8. Unrolled, they are equal to the bit.
"""

import os

import jax
import numpy as np
import pytest

from ebm_gan.runner import cli
from ebm_gan.runner.programs.ebm_gan import config as config_lib
from ebm_gan.runner.programs.ebm_gan import trainables
from tiny_runs import CONFIGS

pytest.importorskip("sklearn")

STEPS = 3
CONFIG = os.path.join(CONFIGS, "stacked_digits.py")


def _exp(seed):
  """A stacked-digits member of width 4 and batch 16, one device, one jitted step per call."""
  return config_lib.build(cli.resolve_config(
      CONFIG,
      [("seed", str(seed)), ("dispatch", "per_step"), ("model.conv_width", "4"),
       ("batch_size", "16"), ("parallel.devices", "1")]))


def _train(trainable):
  states = trainable.init()
  return trainable.compile(STEPS, states)(states)


@pytest.mark.slow  # ~15 s on 2 cores: a group of two conv members and each member alone
def test_a_conv_group_trains_each_member_exactly_as_its_own_run():
  exps = [_exp(0), _exp(1)]
  group_states, group_metrics = _train(trainables.group(exps))
  for i, exp in enumerate(exps):
    states, metrics = _train(trainables.single(exp))
    assert set(metrics) == set(group_metrics)
    for name, values in metrics.items():
      np.testing.assert_array_equal(np.asarray(group_metrics[name])[i], values, err_msg=name)
    for got, want in zip(jax.tree.leaves(group_states.params), jax.tree.leaves(states.params)):
      np.testing.assert_array_equal(np.asarray(got)[i], want)
  # The two members are different runs (seeds 0 and 1), so equality is not vacuous.
  assert not np.array_equal(np.asarray(group_metrics["l1"])[0],
                            np.asarray(group_metrics["l1"])[1])
