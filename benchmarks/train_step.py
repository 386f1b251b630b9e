"""Train-step throughput: the library's step vs a hand-written JAX step of the same game.

Both train the default EBM-GAN (MLP energy and generator, kNN entropy, R1
penalty, OGDA) on 25-gaussians. Measured on one process, same shapes:

  library/scan       eg.make_chunk(eg.make_train_step(...)), N steps per dispatch
  hand-written/scan  two separate jax.grad calls (energy, generator), OGDA by hand, lax.scan
  library/per-step   one jitted step per Python call (shows what lax.scan saves)

Prints compile time, steady steps/s and the ratio library/hand-written.

  python benchmarks/train_step.py [--hidden 256] [--batch 256] [--chunk 200] [--repeats 5]
"""

import argparse
import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax
import jax.numpy as jnp

import ebm_gan as eg


def build(hidden):
  game = eg.EBMGame(eg.models.MLPEnergy((hidden,) * 3), eg.models.MLPGenerator(2, 2, (hidden,) * 3),
                    entropy=eg.entropy.KNN(1), penalty=eg.objectives.score_penalty(0.1))
  data = eg.toy.get("25gaussians")
  return game, data


def hand_written_chunk(game, data, lr, batch, n):
  """The same math without the library: two grads, OGDA u = −lr(2g_t − g_{t−1})."""
  e_apply, g_apply = game.energy.apply, game.generator.apply

  def step(carry, _):
    params, prev, key, t = carry
    k = jax.random.fold_in(key, t)
    k_data, k_z = jax.random.split(k)
    x = data.sample(k_data, batch)
    z = jax.random.normal(k_z, (batch, 2))

    def energy_loss(m):
      x_gen = jax.lax.stop_gradient(g_apply(params["generator"], z))
      u = lambda y: e_apply(m, y)
      g = jax.grad(lambda y: jnp.sum(u(y)))(x)
      return -(jnp.mean(u(x)) - jnp.mean(u(x_gen))) + 0.05 * jnp.mean(jnp.sum(g * g, 1))

    def generator_loss(f):
      x_gen = g_apply(f, z)
      return -(jnp.mean(e_apply(params["energy"], x_gen))
               + eg.entropy.kozachenko_leonenko(x_gen, 1))

    grads = {"energy": jax.grad(energy_loss)(params["energy"]),
             "generator": jax.grad(generator_loss)(params["generator"])}
    new = jax.tree.map(lambda p, g, h: p - lr * (2 * g - h), params, grads, prev)
    return (new, grads, key, t + 1), None

  def chunk(params, key):
    zeros = jax.tree.map(jnp.zeros_like, params)
    (params, _, _, _), _ = jax.lax.scan(step, (params, zeros, key, 0), None, length=n)
    return params
  return chunk


def timed(fn, *args, repeats):
  t = time.perf_counter()
  compiled = jax.jit(fn).lower(*args).compile()
  compile_s = time.perf_counter() - t
  out = compiled(*args)
  jax.block_until_ready(out)
  t = time.perf_counter()
  for _ in range(repeats):
    out = compiled(*args)
  jax.block_until_ready(out)
  return compile_s, (time.perf_counter() - t) / repeats


def main():
  p = argparse.ArgumentParser()
  p.add_argument("--hidden", type=int, default=256)
  p.add_argument("--batch", type=int, default=256)
  p.add_argument("--chunk", type=int, default=200)
  p.add_argument("--repeats", type=int, default=5)
  a = p.parse_args()
  game, data = build(a.hidden)
  tx = eg.optim.ogda(1e-3)
  key = jax.random.PRNGKey(0)
  state = eg.init_state(game, tx, key, data.sample(key, a.batch))
  step = eg.make_train_step(game, tx)
  rows = []

  lib_chunk = eg.make_chunk(step, a.chunk, data.sample, a.batch)
  c, t = timed(lib_chunk, state, repeats=a.repeats)
  rows.append(("library/scan", c, a.chunk / t))
  hand = hand_written_chunk(game, data, 1e-3, a.batch, a.chunk)
  c, t = timed(hand, state.params, key, repeats=a.repeats)
  rows.append(("hand-written/scan", c, a.chunk / t))
  batch = data.sample(key, a.batch)
  c, t = timed(step, state, batch, repeats=a.chunk)
  rows.append(("library/per-step", c, 1.0 / t))

  print(f"jax {jax.__version__}, {jax.devices()[0].platform}, hidden {a.hidden}x3, "
        f"batch {a.batch}, {a.chunk} steps per dispatch")
  print("| variant | compile s | steps/s |\n|---|---|---|")
  for name, c, r in rows:
    print(f"| {name} | {c:.2f} | {r:.0f} |")
  print(f"library/hand-written throughput ratio: {rows[0][2] / rows[1][2]:.2f}")
  print(f"scan speed-up over per-step dispatch: {rows[0][2] / rows[2][2]:.2f}")


if __name__ == "__main__":
  main()
