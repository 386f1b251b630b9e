"""Which entropy estimator? The EBM-GAN on 25-gaussians and swissroll with each of them.

Launch (16 members: 8 estimators x 2 datasets, each in its own run folder; the
table, with modes covered, high-quality fraction and steps per second, is
``<workdir>/sweep.md``):

  python -m experiments.run --config experiments/configs/entropy_compare.py

A quick check (smoke-sized members, seconds each):

  python -m experiments.run --config experiments/configs/entropy_compare.py --config.smoke=True

One estimator alone: ``--no-sweep --config.entropy.name=noisy`` (settings as
``--config.entropy.noisy.sigma=0.05``). The 'flow' members also switch the
generator to the coupling flow (``model.generator=flow``, see FLOW_MODEL): the
exact entropy needs an invertible generator with latent_dim = data_dim = 2.
"""

import ml_collections

from experiments.configs import default

ESTIMATORS = ("flow", "jacobian", "noisy", "score", "ssge", "mi", "knn", "none")
DATASETS = ("25gaussians", "swissroll")


def get_config() -> ml_collections.ConfigDict:
  """The default experiment; every estimator's settings block lives in default.py."""
  return default.get_config()


def finalize(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """The default config's ``smoke`` switch."""
  return default.finalize(c)


# The exact entropy needs the invertible generator. Its conditioners are narrower than
# the MLP generator: with 256-wide ones (x 6 layers) the flow's step in function space
# (which grows with width) diverged within 10 OGDA steps at lr 1e-3.
FLOW_MODEL = {"model.generator": "flow", "model.generator_hidden": (64, 64)}


def sweep(add) -> None:
  """One member per (dataset, estimator)."""
  for dataset in DATASETS:
    for name in ESTIMATORS:
      add(**{"dataset": dataset, "entropy.name": name, **(FLOW_MODEL if name == "flow" else {})})
