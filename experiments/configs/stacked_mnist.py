"""StackedMNIST (28×28×3, 1000 modes): the mode-counting protocol of VEEGAN, PacGAN and MEG.

Needs a prepared MNIST tensorflow-datasets folder (BUILD.md, Datasets):

  python -m experiments.run --config experiments/configs/stacked_mnist.py --config.data.dir=/data/tfds

Measures, on 26 000 generator samples, the modes covered of 1000 and KL(mode histogram ‖
uniform), with a digit classifier trained once on MNIST's training split and cached under
~/.cache/ebm_gan/classifiers (its held-out accuracy is in the summary), plus MMD² to the
stacked held-out images. Meant for a GPU; not timed here (no prepared MNIST on this
machine). Without the folder, exit status 2 with the preparation command.
``--config.smoke=true``: a few tiny steps.
"""

import ml_collections

from experiments.configs import mnist
from experiments.configs import stacked_digits


def get_config() -> ml_collections.ConfigDict:
  """mnist.py's players on three stacked digits."""
  c = mnist.get_config()
  c.dataset = "stacked_mnist"
  return c


finalize = stacked_digits.finalize
