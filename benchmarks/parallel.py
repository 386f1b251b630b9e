"""Data-parallel scaling: steps/s of the default game on 1, 2, 4 and 8 devices.

  python benchmarks/parallel.py [--hidden 256] [--per-device 64] [--batch 256] [--chunk 50]
                                [--fake-devices 8] [--kinds global,per_device,group] [--quick]

Three tables, each with the scaling efficiency against one device:

* **weak scaling**: a fixed batch per device (``--per-device``), so the global batch grows with
  the devices; efficiency = (steps/s on N) / (steps/s on 1), ideally 1;
* **strong scaling**: a fixed global batch (``--batch``) split over the devices;
  efficiency = (steps/s on N) / (N × steps/s on 1), ideally 1;
* a 4-member vmapped sweep group at the fixed global batch, members spread over the devices.

Single runs use the runner's default layout, the one-device program over the global batch
(``ebm_gan.parallel.jit_global``: docs/theory.md §8, 'Several devices'), and, with
``--kinds`` including ``per_device``, the per-device ``shard_map`` layout for comparison.
The game is the default's (MLP energy and generator, kNN entropy with k = 1, R1,
optimistic Adam). Without accelerators the devices are fake CPU devices carved out of the
same cores (``--fake-devices``): the tables then measure the cost of partitioning and
collectives on shared cores, not a speed-up. The machine's load is printed with the tables.
"""

from __future__ import annotations

import argparse
import os
import sys
import time

if __name__ == "__main__":  # fake CPU devices must exist before jax starts
  _n = next((a.split("=")[1] for a in sys.argv if a.startswith("--fake-devices=")), "8")
  os.environ.setdefault("XLA_FLAGS", f"--xla_force_host_platform_device_count={_n}")
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax  # noqa: E402  pylint: disable=g-import-not-at-top
import jax.numpy as jnp  # noqa: E402

import ebm_gan as eg  # noqa: E402


def _game(hidden: int):
  return eg.EBMGame(eg.models.MLPEnergy((hidden,) * 3),
                    eg.models.MLPGenerator(2, 2, (hidden,) * 3),
                    entropy=eg.entropy.KNN(k=1), penalty=eg.objectives.score_penalty(1e-4))


def _time(fn, state, repeats: int) -> float:
  """Seconds per call of a compiled fn(state), after one warm-up call."""
  state, _ = fn(state)
  jax.block_until_ready(state)
  t = time.perf_counter()
  for _ in range(repeats):
    state, _ = fn(state)
  jax.block_until_ready(state)
  return (time.perf_counter() - t) / repeats


def single_run(game, tx, data, devices: int, batch: int, chunk: int, repeats: int,
               layout: str = "global") -> float:
  """Steps/s of one run at global batch ``batch`` over ``devices`` ('global' or 'per_device')."""
  per_device = layout == "per_device" and devices > 1
  axis = eg.parallel.AXIS if per_device else None
  step = eg.make_train_step(game, tx, axis_name=axis)
  fn = eg.make_chunk(step, chunk, data.sample, batch // devices if per_device else batch,
                     axis_name=axis)
  state = eg.init_state(game, tx, jax.random.PRNGKey(0), data.sample(jax.random.PRNGKey(1), batch))
  if devices == 1:
    return chunk / _time(jax.jit(fn), state, repeats)
  mesh = eg.parallel.device_mesh(devices)
  state = jax.device_put(state, eg.parallel.replicated(mesh))
  fn = jax.jit(eg.parallel.data_parallel(fn, mesh)) if per_device else eg.parallel.jit_global(
      fn, mesh)
  return chunk / _time(fn, state, repeats)


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


def _table(title: str, header: str, rows: list[str]) -> None:
  print(f"\n{title}\n\n| devices | {header} |\n|---|{'---|' * header.count('|')}---|")
  for row in rows:
    print(row)


def main(argv=None):
  """Prints the weak-scaling, strong-scaling and sweep-group tables."""
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--hidden", type=int, default=256)
  p.add_argument("--per-device", type=int, default=64, help="weak scaling: batch per device")
  p.add_argument("--batch", type=int, default=256, help="strong scaling: global batch")
  p.add_argument("--chunk", type=int, default=50)
  p.add_argument("--repeats", type=int, default=3)
  p.add_argument("--fake-devices", type=int, default=8)
  p.add_argument("--kinds", default="global,per_device,group")
  p.add_argument("--quick", action="store_true", help="a small model and short chunks")
  a = p.parse_args(argv)
  if a.quick:
    a.hidden, a.chunk, a.repeats = 32, 10, 1
  kinds = a.kinds.split(",")
  game, tx, data = _game(a.hidden), eg.optim.optimistic_adam(1e-3), eg.toy.get("25gaussians")
  counts = [n for n in (1, 2, 4, 8) if n <= jax.device_count() and a.batch % n == 0]
  print(f"{jax.device_count()} {jax.devices()[0].platform} device(s) ({jax.devices()[0].device_kind});"
        f" model 3x{a.hidden}, {a.chunk} steps per chunk; load average before: {os.getloadavg()}")
  layouts = [k for k in ("global", "per_device") if k in kinds]
  weak, strong, groups = [], [], []
  base = {}
  for n in counts:
    cells_w, cells_s = [], []
    for layout in layouts:
      w = single_run(game, tx, data, n, a.per_device * n, a.chunk, a.repeats, layout)
      s = single_run(game, tx, data, n, a.batch, a.chunk, a.repeats, layout)
      base.setdefault(("w", layout), w)
      base.setdefault(("s", layout), s)
      cells_w.append(f"{w:.1f} | {w / base[('w', layout)]:.2f}")
      cells_s.append(f"{s:.1f} | {s / (n * base[('s', layout)]):.2f}")
    weak.append(f"| {n} | {a.per_device * n} | " + " | ".join(cells_w) + " |")
    strong.append(f"| {n} | " + " | ".join(cells_s) + " |")
    if "group" in kinds and 4 % n == 0 or "group" in kinds and n == 8:
      g = group(game, tx, data, n, max(4, n), a.batch, a.chunk, a.repeats)
      base.setdefault("g", g)
      groups.append(f"| {n} | {max(4, n)} | {g:.1f} | {g / base['g']:.2f} |")
  cols = " | ".join(f"{layout} steps/s | efficiency" for layout in layouts)
  _table(f"Weak scaling ({a.per_device} samples per device)", "global batch | " + cols, weak)
  _table(f"Strong scaling (global batch {a.batch})", cols, strong)
  if groups:
    _table(f"Sweep group, members spread over the devices (batch {a.batch} each)",
           "members | member-steps/s | ratio to 1 device", groups)
  print(f"\nload average after: {os.getloadavg()}")


if __name__ == "__main__":
  main()
