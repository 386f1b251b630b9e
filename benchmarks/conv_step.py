"""Train-step throughput of the conv players: normalisation none vs spectral, lax.scan vs per-step.

The EBM-GAN game with ConvEnergy / ConvGenerator on 8×8×3 images (kNN entropy, R1 penalty,
OGDA), data uniform noise in [−1, 1] drawn inside the step (only the players' cost matters).
For each normalisation it times the library's ``make_chunk`` (N steps in one ``lax.scan``)
and one jitted step per Python call; XLA:CPU runs convolutions inside a loop body far more
slowly (jax-ml/jax#12868), which this shows.

  python benchmarks/conv_step.py [--width 16] [--side 8] [--batch 64] [--chunk 20] [--repeats 2]
"""

import argparse
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import time

import jax

import ebm_gan as eg
from train_step import interleaved  # median seconds per call, in alternating repetitions


def timed(fn, *args, repeats=2):
  """(compile seconds, median seconds per call) of ``jax.jit(fn)(*args)``."""
  t = time.perf_counter()
  compiled = jax.jit(fn).lower(*args).compile()
  compile_s = time.perf_counter() - t
  return compile_s, interleaved([(compiled, args)], repeats)[0]


def main():
  p = argparse.ArgumentParser()
  p.add_argument("--width", type=int, default=16)
  p.add_argument("--side", type=int, default=8)
  p.add_argument("--batch", type=int, default=64)
  p.add_argument("--chunk", type=int, default=20)
  p.add_argument("--repeats", type=int, default=2)
  a = p.parse_args()
  shape = (a.side, a.side, 3)
  sample = lambda key, n: jax.random.uniform(key, (n,) + shape, minval=-1.0, maxval=1.0)
  key = jax.random.PRNGKey(0)
  rows = []
  for norm in eg.models.NORMALISATIONS:
    game = eg.EBMGame(eg.models.ConvEnergy(a.width, norm),
                      eg.models.ConvGenerator(shape, 16, a.width, norm),
                      entropy=eg.entropy.KNN(1), penalty=eg.objectives.score_penalty(0.1))
    tx = eg.optim.ogda(1e-3)
    state = eg.init_state(game, tx, key, sample(key, a.batch))
    step = eg.make_train_step(game, tx)
    c, t = timed(eg.make_chunk(step, a.chunk, sample, a.batch), state, repeats=a.repeats)
    rows.append((norm, "scan", c, a.chunk / t))
    c, t = timed(step, state, sample(key, a.batch), repeats=a.chunk * a.repeats)
    rows.append((norm, "per-step", c, 1.0 / t))
  print(f"jax {jax.__version__}, {jax.devices()[0].platform}, images {shape}, width {a.width}, "
        f"batch {a.batch}, {a.chunk} steps per scan")
  print("| normalisation | dispatch | compile s | steps/s |\n|---|---|---|---|")
  for norm, how, c, r in rows:
    print(f"| {norm} | {how} | {c:.2f} | {r:.1f} |")
  print(f"spectral/none per-step throughput: {rows[3][3] / rows[1][3]:.2f}; "
        f"scan/per-step (none): {rows[0][3] / rows[1][3]:.2f}")


if __name__ == "__main__":
  main()
