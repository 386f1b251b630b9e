"""The EBM-GAN on the real 8×8 UCI digits (scikit-learn, offline; 8×8×1, 10 classes).

Conv energy and generator, MEG's mutual-information entropy; measures MMD² between 1000
generator samples and the 359 held-out digits, and writes samples.png (a grid of
generator samples) next to data.png (training digits).

Launch (a few minutes on 2 CPU cores, like stacked_digits.py):

  python -m experiments.run --config experiments/configs/digits.py

A seconds-long check: ``--config.smoke=true``.
"""

import ml_collections

from experiments.configs import stacked_digits


def get_config() -> ml_collections.ConfigDict:
  """stacked_digits.py's settings on the single-channel digits."""
  c = stacked_digits.get_config()
  c.dataset = "digits"
  return c


finalize = stacked_digits.finalize
