"""GDA vs OGDA on the default EBM-GAN over learning rates and seeds: a sweep declared as code.

Launch (12 members; each (optimizer) group of seeds x learning rates is one vmapped program):

  python -m experiments.run --config experiments/configs/optimizer_sweep.py

A quick check (smoke-sized members, seconds each):

  python -m experiments.run --config experiments/configs/optimizer_sweep.py --config.smoke=True

``--no-sweep`` runs the base config alone; ``--sweep KEY=V1,V2`` multiplies the
members below by a grid; ``--sequential`` runs every member on its own. The table
is ``<workdir>/sweep.md`` (and ``sweep.csv``).
"""

import ml_collections

from experiments.configs import default


def get_config() -> ml_collections.ConfigDict:
  """The default experiment (see default.py); the sweep below varies it."""
  return default.get_config()


def finalize(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """The default config's ``smoke`` switch."""
  return default.finalize(c)


def sweep(add) -> None:
  """Adds one member per (optimizer, learning rate, seed)."""
  for name in ("gda", "ogda"):
    for lr in (1e-3, 3e-4):
      for seed in range(3):
        add(**{"optimizer.name": name, "optimizer.lr": lr}, seed=seed)
