"""The toy benchmark: every EBM-GAN entropy estimator and two GAN baselines on three toys.

Members: METHODS × DATASETS × 3 seeds (63 runs; the seeds of one method and dataset train as
one vmapped program). Each method is the default config with the overrides below, at one
budget for all: BUDGET_STEPS steps of batch 256. Launch, then table the results across seeds:

  python -m experiments.run --config experiments/configs/toy_benchmark.py --workdir runs/toy_benchmark
  python -m experiments.report runs/toy_benchmark --out results/toy_benchmark \\
      --title "Toy benchmark (3 seeds, mean ± std)"

A quick check of the whole pipeline (smoke-sized members): add ``--config.smoke=True``.
On a host with many cores and an accelerator, run one process per method side by side,
then table the parts together (see experiments/parts.py):

  python -m experiments.parts --config experiments/configs/toy_benchmark.py --by label \
      --workdir runs/toy_benchmark
  python -m experiments.report runs/toy_benchmark/part-* --out results/toy_benchmark
"""

import ml_collections

from experiments.configs import default
from experiments.configs.entropy_compare import FLOW_MODEL

DATASETS = ("8gaussians", "25gaussians", "swissroll")
SEEDS = (0, 1, 2)
METHODS = {  # the baselines first: they are cheap, and the EBM-GAN rows are read against them
    "GAN (non-saturating)": {"game": "gan", "gan_loss": "non_saturating"},
    # WGAN-GP with MEG's toy weight (λ = 0.1 in (6.8), docs/theory.md §6), held constant:
    # the Lipschitz constraint is the method, not a bias to anneal.
    "WGAN-GP": {"game": "gan", "gan_loss": "wasserstein", "penalty.name": "wgan_gp",
                "penalty.weight": 0.1, "penalty.schedule": "constant"},
    "EBM-GAN (MI)": {"entropy.name": "mi"},
    "EBM-GAN (no entropy)": {"entropy.name": "none"},
    "EBM-GAN (kNN)": {"entropy.name": "knn"},
    "EBM-GAN (noisy)": {"entropy.name": "noisy"},
    "EBM-GAN (flow)": {"entropy.name": "flow", **FLOW_MODEL},
}


BUDGET_STEPS = 16_000  # every method and dataset: ~9 h on 2 CPU cores; ~13 min as parts on an H100


def get_config() -> ml_collections.ConfigDict:
  """The default experiment (experiments/configs/default.py) at the benchmark's budget."""
  c = default.get_config()
  c.steps = BUDGET_STEPS
  c.log_every = 50  # 320 lines of metrics per member rather than 16 000 (63 members)
  c.picture_every = 0  # the final pictures only
  # Declared before the MALA negative phase became the default: every EBM-GAN row takes L1's
  # negatives from the generator itself, so the rows compare the entropy estimators alone.
  c.negative_phase.mala_steps = 0
  c.negative_phase.step_size = 0.01
  # The default's rates, batch and R1 before 2026-12-03, which results/toy_benchmark.md was made with
  # (the default since: results/default_run.md).
  c.optimizer.lr = 3e-4
  c.batch_size = 256
  c.penalty.weight = 0.03
  c.penalty.final_weight = 0.001
  return c


def finalize(c: ml_collections.ConfigDict) -> ml_collections.ConfigDict:
  """The default config's ``smoke`` switch."""
  return default.finalize(c)


def sweep(add) -> None:
  """One member per (method, dataset, seed)."""
  for label, overrides in METHODS.items():
    for dataset in DATASETS:
      for seed in SEEDS:
        add(label=label, dataset=dataset, seed=seed, **overrides)
