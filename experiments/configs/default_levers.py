"""Why the default run is set up as it is: each of its settings added in turn, on three seeds.

The rows go from the previous default (MEG's MI bound at σ = 0, which is not an entropy
estimator: docs/theory.md (4.10)) to today's (experiments/configs/default.py), one lever
at a time, then put the other estimators at the new settings:

  MI σ=0 (previous)    entropy mi, generator lr 3e-4, R1 0.03 → 1e-3, 24 000 steps
  kNN                  the same with entropy knn, at 16 000 steps
  + lr 1e-3            the generator's rate up to the critic's
  + R1 0.003 → 1e-4    a weaker R1 (today's default but for the steps)
  default (48k)        48 000 steps (the default at batch 256, before the last row)
  MI σ=0 (new)         + R1's settings with MI instead of kNN
  none (new)           + R1's settings without the entropy term
  kNN k=3 (new)        + R1's settings with the 3rd neighbour
  batch 512 (new)      + R1's settings at twice the batch
  default: batch 512   today's default: batch 512, 48 000 steps

Launch two rows at a time on the 2-core machine (about 2 h), then table them:

  python -m experiments.parts --config experiments/configs/default_levers.py --by label \\
      --workdir runs/levers --jobs 2
  python -m experiments.report runs/levers/part-* --by-seed --out results/default_run_levers

The members differ only in seed within a row, so each row is one vmapped program.
"""

import ml_collections

from experiments.configs import default

PREVIOUS = {"optimizer.lr": 3e-4, "penalty.weight": 0.03, "penalty.final_weight": 1e-3}
SHORT = {"steps": 16_000}

LEVERS = {
    "MI σ=0 (previous)": {"entropy.name": "mi", **PREVIOUS, "steps": 24_000},
    "kNN": {**PREVIOUS, **SHORT},
    "+ lr 1e-3": {"penalty.weight": 0.03, "penalty.final_weight": 1e-3, **SHORT},
    "+ R1 0.003 → 1e-4": SHORT,
    "default (48k)": {},
    "MI σ=0 (new)": {"entropy.name": "mi", **SHORT},
    "none (new)": {"entropy.name": "none", **SHORT},
    "kNN k=3 (new)": {"entropy.knn.k": 3, **SHORT},
    "batch 512 (new)": {"batch_size": 512, **SHORT},
    "default: batch 512": {"batch_size": 512},
}
SEEDS = (0, 1, 2)


def get_config() -> ml_collections.ConfigDict:
  """The default experiment at batch 256 (the rows above the last ran at it), logging every
  10th step (48 000 rows per member otherwise)."""
  c = default.get_config()
  c.batch_size = 256
  c.log_every = 10
  return c


def finalize(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """The default config's ``smoke`` switch."""
  return default.finalize(c)


def sweep(add) -> None:
  """One member per (lever row, seed)."""
  for label, overrides in LEVERS.items():
    for seed in SEEDS:
      add(label=label, seed=seed, **overrides)
