"""The EBM-GAN on MNIST (28×28×1) with conv models: needs a prepared tensorflow-datasets folder.

Prepare once where the internet is available (BUILD.md, Datasets), then point
``data.dir`` at it:

  python -m experiments.run --config experiments/configs/mnist.py --config.data.dir=/data/tfds

Without the folder the command (and ``--dry-run``) stops with exit status 2, naming the
dataset, the folder it looked in and the ``tfds build`` command. Measures MMD² between
generator samples and held-out (test) images; writes sample grids. Meant for a GPU
(``pip install -U "jax[cuda12]"``); not timed here (no prepared MNIST on this machine):
a 28×28 conv step is ~10x the work of an 8×8×3 one, so expect tens of minutes on a CPU.
``--config.smoke=true``: a few tiny steps.
"""

import ml_collections

from experiments.configs import stacked_digits


def get_config() -> ml_collections.ConfigDict:
  """MNIST, DCGAN-sized conv players (28 → 14 → 7: widths 32, 64, 128)."""
  c = stacked_digits.get_config()
  c.dataset = "mnist"
  c.model.conv_width = 32
  c.model.latent_dim = 64
  c.model.normalisation = "none"
  c.entropy.mi.hidden = (256,)
  c.steps = 20000
  c.batch_size = 64
  c.steps_per_dispatch = 200
  c.eval_samples = 2000
  c.checkpoint_every = 1000
  c.picture_every = 2000
  return c


finalize = stacked_digits.finalize
