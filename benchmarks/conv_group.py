"""What a sweep group of conv members costs per step: vmapped, unrolled, or one member alone.

The member is images_benchmark.py's EBM-GAN (stacked digits 8×8×3, width 16, kNN entropy,
batch 64), one jitted training step per call, as image runs dispatch on CPU. Three ways of
training K members, A/B in one process (interleaved repetitions, medians):

* one member alone (the K members run one after another cost K times this);
* ``jax.vmap`` over the members: each convolution becomes one grouped convolution
  (``feature_group_count`` = K; the compiled text is searched and the count printed);
* the members unrolled in one program (a Python loop at trace time): the runner's own
  ``trainables.unrolled_members``, what its groups do under the per_step dispatch.

  python benchmarks/conv_group.py [--members 3] [--repeats 60]
"""

import argparse
import os
import re
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import jax
import jax.numpy as jnp

import ebm_gan as eg
from ebm_gan.runner import cli
from ebm_gan.runner.programs.ebm_gan import trainables
from train_step import interleaved  # median seconds per call, in alternating repetitions

CONFIG = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                      "experiments", "configs", "images_benchmark.py")


def grouped_convolutions(compiled) -> tuple[int, int]:
  """(grouped, all) convolutions in a compiled program's text."""
  text = compiled.as_text()
  counts = [int(n) for n in re.findall(r"feature_group_count=(\d+)", text)]
  return sum(n > 1 for n in counts), text.count(" convolution(")


def main():
  p = argparse.ArgumentParser()
  p.add_argument("--members", type=int, default=3)
  p.add_argument("--repeats", type=int, default=60)
  a = p.parse_args()
  exp = cli.build(CONFIG, cli.resolve_config(CONFIG, [("entropy.name", "knn")]))[1]
  key = jax.random.PRNGKey(0)
  x = exp.dataset.sample(key, exp.config.batch_size)
  step = eg.make_train_step(exp.game, exp.tx)
  state = eg.init_state(exp.game, exp.tx, key, x)
  states = jax.vmap(lambda k: eg.init_state(exp.game, exp.tx, k, x))(
      jax.random.split(key, a.members))
  xs = jnp.stack([x] * a.members)

  # The runner's own member loop: its chunk(a, h, state) is here step(state, batch).
  unrolled = trainables.unrolled_members(lambda _, batch, s: step(s, batch))

  calls = {"one member": (jax.jit(step), (state, x)),
           f"vmap of {a.members}": (jax.jit(jax.vmap(step)), (states, xs)),
           f"{a.members} unrolled": (jax.jit(lambda s, b: unrolled(None, b, s)), (states, xs))}
  compiled = {name: fn.lower(*args).compile() for name, (fn, args) in calls.items()}
  seconds = interleaved([(compiled[n], args) for n, (_, args) in calls.items()], a.repeats)
  print(f"jax {jax.__version__}, {jax.devices()[0].platform}, {a.repeats} interleaved steps "
        f"each, load average {os.getloadavg()[0]:.2f} at the end")
  print("| how | ms/step (median) | ms per member | per member vs one alone | grouped convs |\n"
        "|---|---|---|---|---|")
  for (name, c), s in zip(compiled.items(), seconds):
    k = 1 if name == "one member" else a.members
    grouped, total = grouped_convolutions(c)
    print(f"| {name} | {1e3 * s:.1f} | {1e3 * s / k:.1f} | {s / k / seconds[0]:.2f} | "
          f"{grouped} of {total} |")


if __name__ == "__main__":
  main()
