"""The image benchmark: the EBM-GAN against GAN baselines on stacked digits, three seeds.

stacked_digits (three real 8×8 UCI digits as the channels, 1000 modes; the StackedMNIST
protocol in small, offline) with the conv players of stacked_digits.py, at one budget for
every method: 3 000 steps of batch 64. Methods: the EBM-GAN with the kNN entropy (the toy
default's validated estimator, results/entropy_gradients.md) and with MEG's MI bound, the
non-saturating GAN, and WGAN-GP. The seeds of a method train as one vmapped program. The
summary of each member counts the modes, KL(mode histogram ‖ uniform), MMD² and the
Fréchet distance in the digit classifier's features (docs/theory.md §10). Launch, then table:

  python -m experiments.run --config experiments/configs/images_benchmark.py --workdir runs/images_benchmark
  python -m experiments.report runs/images_benchmark --out results/images_benchmark

Two processes side by side (one per pair of methods) on a machine with the cores for it:

  python -m experiments.parts --config experiments/configs/images_benchmark.py --by label \
      --jobs 2 --workdir runs/images_benchmark
  python -m experiments.report runs/images_benchmark/part-* --out results/images_benchmark
"""

import ml_collections

from experiments.configs import stacked_digits

SEEDS = (0, 1, 2)
METHODS = {
    "EBM-GAN (kNN)": {"entropy.name": "knn"},
    "EBM-GAN (MI)": {"entropy.name": "mi"},
    "GAN (non-saturating)": {"game": "gan", "gan_loss": "non_saturating"},
    # WGAN-GP at its paper's weight λ = 10 (6.8) on the critic's logit, constant.
    "WGAN-GP": {"game": "gan", "gan_loss": "wasserstein", "penalty.name": "wgan_gp",
                "penalty.weight": 10.0},
}


def get_config() -> ml_collections.ConfigDict:
  """stacked_digits.py at the benchmark's budget, final pictures only."""
  c = stacked_digits.get_config()
  c.picture_every = 0
  c.log_every = 10
  return c


def finalize(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """The image configs' ``smoke`` switch."""
  return stacked_digits.finalize(c)


def sweep(add) -> None:
  """One member per (method, seed)."""
  for label, overrides in METHODS.items():
    for seed in SEEDS:
      add(label=label, seed=seed, **overrides)
