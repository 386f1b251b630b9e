"""Data-parallel throughput: steps/s of the default game on 1, 2 and 4 devices.

  python benchmarks/parallel.py [--hidden 256] [--batch 256] [--chunk 100] [--fake-devices 4]

The default game (MLP energy and generator, MI entropy, R1, optimistic Adam) is
trained in chunks of ``--chunk`` steps with the global batch split over the
devices (``ebm_gan.parallel.data_parallel``), and sweep-style groups of 4
vmapped members are spread one per device. Without accelerators the devices are
fake CPU devices carved out of the same cores (``--fake-devices``): the ratio then
measures the overhead of the mapping, not a speed-up.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

if __name__ == "__main__":  # fake CPU devices must exist before jax starts
  _n = next((a.split("=")[1] for a in sys.argv if a.startswith("--fake-devices=")), "4")
  os.environ.setdefault("XLA_FLAGS", f"--xla_force_host_platform_device_count={_n}")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402  pylint: disable=g-import-not-at-top
import jax.numpy as jnp  # noqa: E402

import ebm_gan as eg  # noqa: E402


def _game(hidden: int):
  return eg.EBMGame(eg.models.MLPEnergy((hidden,) * 3),
                    eg.models.MLPGenerator(2, 2, (hidden,) * 3),
                    entropy=eg.entropy.MutualInformation(hidden=(hidden, hidden)),
                    penalty=eg.objectives.score_penalty(0.03))


def _time(fn, state, repeats: int) -> float:
  """Seconds per call of a compiled fn(state), after one warm-up call."""
  state, _ = fn(state)
  jax.block_until_ready(state)
  t = time.perf_counter()
  for _ in range(repeats):
    state, _ = fn(state)
  jax.block_until_ready(state)
  return (time.perf_counter() - t) / repeats


def single_run(game, tx, data, devices: int, batch: int, chunk: int, repeats: int) -> float:
  """Steps/s of one run data-parallel over ``devices``."""
  axis = eg.parallel.AXIS if devices > 1 else None
  step = eg.make_train_step(game, tx, axis_name=axis)
  fn = eg.make_chunk(step, chunk, data.sample, batch // devices, axis_name=axis)
  state = eg.init_state(game, tx, jax.random.PRNGKey(0), data.sample(jax.random.PRNGKey(1), batch))
  if devices > 1:
    mesh = eg.parallel.device_mesh(devices)
    fn = eg.parallel.data_parallel(fn, mesh)
    state = jax.device_put(state, eg.parallel.replicated(mesh))
  return chunk / _time(jax.jit(fn), state, repeats)


def group(game, tx, data, devices: int, members: int, batch: int, chunk: int,
          repeats: int) -> float:
  """Member-steps/s of ``members`` vmapped runs, spread over ``devices``."""
  fn = jax.vmap(eg.make_chunk(eg.make_train_step(game, tx), chunk, data.sample, batch))
  keys = jnp.stack([jax.random.PRNGKey(i) for i in range(members)])
  states = jax.vmap(lambda k: eg.init_state(game, tx, k, data.sample(k, batch)))(keys)
  if devices > 1:
    mesh = eg.parallel.device_mesh(devices)
    fn = eg.parallel.data_parallel(fn, mesh, sharded_args=1, out_sharded=True)
    states = jax.device_put(states, jax.sharding.NamedSharding(
        mesh, jax.sharding.PartitionSpec(eg.parallel.AXIS)))
  return members * chunk / _time(jax.jit(fn), states, repeats)


def main(argv=None):
  """Prints the table of steps/s and member-steps/s per device count, with ratios to 1."""
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--hidden", type=int, default=256)
  p.add_argument("--batch", type=int, default=256)
  p.add_argument("--chunk", type=int, default=100)
  p.add_argument("--repeats", type=int, default=3)
  p.add_argument("--fake-devices", type=int, default=4)
  a = p.parse_args(argv)
  game, tx, data = _game(a.hidden), eg.optim.optimistic_adam(3e-4), eg.toy.get("25gaussians")
  counts = [n for n in (1, 2, 4) if n <= jax.device_count()]
  print(f"{jax.device_count()} {jax.devices()[0].platform} device(s); model 3x{a.hidden}, "
        f"global batch {a.batch}, {a.chunk} steps per chunk")
  print("| devices | run steps/s | ratio | 4-member group, member-steps/s | ratio |")
  print("|---|---|---|---|---|")
  base_run = base_group = None
  for n in counts:
    run = single_run(game, tx, data, n, a.batch, a.chunk, a.repeats)
    grp = group(game, tx, data, n, 4, a.batch, a.chunk, a.repeats)
    base_run, base_group = base_run or run, base_group or grp
    print(f"| {n} | {run:.1f} | {run / base_run:.2f} | {grp:.1f} | {grp / base_group:.2f} |")


if __name__ == "__main__":
  main()
