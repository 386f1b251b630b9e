"""The 4-stack variant in small: stacked4_digits (8×8×4, 10 000 modes), three seeds.

MEG (Kumar et al. 2019) reports its 4-stack StackedMNIST at 10 000 of 10 000 modes, KL 0.048,
from a mode histogram over 260 000 samples. Here: four independent real 8×8 UCI digits
(scikit-learn, offline) as the four channels, mode 1000·d₁ + 100·d₂ + 10·d₃ + d₄; the
EBM-GAN with the kNN entropy and the conv players of stacked_digits.py at the image
benchmark's budget (3 000 steps of batch 64), with the best lever measured on the 3-stack,
group normalisation of the generator's hidden maps (results/images.md, "Levers"). Each seed's
summary counts the modes and KL(mode histogram ‖ uniform) over 260 000 generator samples, and
FD-digits (with its floor) and MMD² against the held-out stacks. The seeds train as one
vmapped program. Launch, then table (results/images.md, "The 4-stack variant"):

  python -m experiments.run --config experiments/configs/stacked4_digits.py --workdir runs/stacked4_digits
  python -m experiments.report runs/stacked4_digits --out results/images_stack4

One seed: ``--only seed=0``. A seconds-long check: ``--config.smoke=true``.
"""

import ml_collections

from experiments.configs import images_benchmark

SEEDS = (0, 1, 2)


def get_config() -> ml_collections.ConfigDict:
  """images_benchmark.py's kNN EBM-GAN on stacked4_digits, generator group norm, 260 000 mode samples."""
  c = images_benchmark.get_config()
  c.dataset = "stacked4_digits"
  c.entropy.name = "knn"
  c.model.generator_normalisation = "group"  # the 3-stack's best lever: 1000/1000 modes, KL 0.151
  c.evaluation.mode_samples = 260_000        # MEG's 4-stack histogram size
  return c


def finalize(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """The image configs' ``smoke`` switch."""
  return images_benchmark.finalize(c)


def sweep(add) -> None:
  """One member per seed (one vmapped group)."""
  for seed in SEEDS:
    add(label="EBM-GAN (kNN, generator group norm)", seed=seed)
