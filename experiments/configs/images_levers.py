"""The conv players' levers on stacked digits, each on three seeds, at the image benchmark's budget.

The EBM-GAN with the kNN entropy of images_benchmark.py (stacked_digits, 3 000 steps of batch
64, width 16, latent 16, optimistic Adam 3e-4, R1 0.1), without a lever and with one of:
spectral normalisation of both conv players' kernels (``model.normalisation=spectral``), group
normalisation of the generator's hidden maps (``model.generator_normalisation=group``), or a
critic twice as wide as the generator (``model.critic_conv_width=32``,
``model.generator_conv_width=16``). The seeds of a lever train as one vmapped program. Launch,
then table (results/images.md, "Levers"):

  python -m experiments.run --config experiments/configs/images_levers.py --workdir runs/images_levers
  python -m experiments.report runs/images_levers --out results/images_levers

One lever alone: ``--only label='spectral norm'`` (in a folder of its own).
"""

import ml_collections

from experiments.configs import images_benchmark

SEEDS = (0, 1, 2)
LEVERS = {
    "no lever": {},
    "spectral norm": {"model.normalisation": "spectral"},
    "generator group norm": {"model.generator_normalisation": "group"},
    "critic 32, generator 16": {"model.critic_conv_width": 32, "model.generator_conv_width": 16},
}


def get_config() -> ml_collections.ConfigDict:
  """images_benchmark.py's settings (stacked_digits.py at 3 000 steps, final pictures only)."""
  return images_benchmark.get_config()


def finalize(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """The image configs' ``smoke`` switch."""
  return images_benchmark.finalize(c)


def sweep(add) -> None:
  """One member per (lever, seed), all with the kNN entropy."""
  for label, overrides in LEVERS.items():
    for seed in SEEDS:
      add(label=label, seed=seed, **{"entropy.name": "knn", **overrides})
