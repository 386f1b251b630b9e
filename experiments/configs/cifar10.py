"""The EBM-GAN on CIFAR-10 (32×32×3) with spectrally normalised conv models; needs prepared tfds data.

  python -m experiments.run --config experiments/configs/cifar10.py --config.data.dir=/data/tfds

A missing folder stops the command (and ``--dry-run``) with exit status 2 and the
preparation command (BUILD.md, Datasets). Measures MMD² to the held-out (test) images and
writes sample grids. Meant for a GPU; not timed here (no prepared CIFAR-10 on this
machine). ``--config.smoke=true``: a few tiny steps.
"""

import ml_collections

from experiments.configs import mnist
from experiments.configs import stacked_digits


def get_config() -> ml_collections.ConfigDict:
  """CIFAR-10: 32 → 16 → 8 → 4 (widths 32..256), spectral normalisation, 50 000 steps."""
  c = mnist.get_config()
  c.dataset = "cifar10"
  c.model.normalisation = "spectral"
  c.model.latent_dim = 128
  c.steps = 50000
  return c


finalize = stacked_digits.finalize
