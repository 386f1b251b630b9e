"""What each lever of experiments/configs/images_levers.py costs per training step, A/B in one process.

The levers' games and optimisers are built by the runner from images_levers.py (stacked digits
8×8×3, width 16, kNN entropy, R1 0.1, optimistic Adam), one member (seed 0) each. One jitted
training step per call, as image runs dispatch on CPU; the levers are timed in interleaved
repetitions (each repetition times one step of every lever in turn), so that a change of the
machine's load falls on all of them alike; the medians are printed, with each lever's
throughput relative to no lever. The sweep's own wall times come from one vmapped program of
three seeds per lever, run one after another, so a load that changes between levers skews them.

  python benchmarks/conv_levers.py [--repeats 200]
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jax

import ebm_gan as eg
from ebm_gan.runner import cli
from train_step import interleaved  # median seconds per call, in alternating repetitions

CONFIG = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                      "experiments", "configs", "images_levers.py")


def lever_step(overrides):
  """(jitted step, its arguments) of the images_levers.py member with these overrides."""
  config = cli.resolve_config(CONFIG, [("entropy.name", "knn"), *overrides.items()])
  exp = cli.build(CONFIG, config)[1]
  key = jax.random.PRNGKey(0)
  x = exp.dataset.sample(key, config.batch_size)
  state = eg.init_state(exp.game, exp.tx, key, x)
  return jax.jit(eg.make_train_step(exp.game, exp.tx)), (state, x)


def main():
  p = argparse.ArgumentParser()
  p.add_argument("--repeats", type=int, default=200)
  a = p.parse_args()
  from experiments.configs import images_levers  # pylint: disable=g-import-not-at-top
  levers = images_levers.LEVERS
  calls = [lever_step(overrides) for overrides in levers.values()]
  seconds = interleaved(calls, a.repeats)
  print(f"jax {jax.__version__}, {jax.devices()[0].platform}, {a.repeats} interleaved steps "
        f"per lever, load average {os.getloadavg()[0]:.2f} at the end")
  print("| lever | ms/step (median) | steps/s | relative to no lever |\n|---|---|---|---|")
  for label, s in zip(levers, seconds):
    print(f"| {label} | {1e3 * s:.1f} | {1 / s:.1f} | {seconds[0] / s:.2f} |")


if __name__ == "__main__":
  main()
