"""The runner on 4 fake CPU devices: data-parallel runs, their resume, and sweep groups."""

import os

import jax
import numpy as np
import pytest

from ebm_gan.runner import cli
from ebm_gan.runner import record
from ebm_gan.runner.programs import ebm_gan as program

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT = os.path.join(ROOT, "experiments", "configs", "default.py")
# A small model without the R1 double backward or the MI network, so that compiling
# (most of these tests' time) is short; the estimator-level tests are in test_parallel.py.
TINY = [("smoke", "true"), ("steps", "40"), ("steps_per_dispatch", "20"), ("batch_size", "32"),
        ("checkpoint_every", "20"), ("eval_samples", "200"), ("tensorboard_every", "0"),
        ("entropy.name", "knn"), ("penalty.name", "none"), ("model.energy_hidden", "(16,)"),
        ("model.generator_hidden", "(16,)"), ("picture_every", "0"),
        ("optimizer.schedule", "constant"),  # a run of 20 steps is resumed to 40 below
        ("penalty.height", "0.0"),  # the tolerances below were measured without it
        ("negative_phase.mala_steps", "0"),  # the same: MALA's accept/reject amplifies rounding
        ("evaluation.mcmc_steps", "0")]  # not compared here; test_cli's smoke run evaluates it


@pytest.fixture(scope="module", autouse=True)
def _need_devices():
  if jax.device_count() < 4:
    pytest.skip("needs 4 devices (tests/conftest.py calls chex.set_n_cpu_devices(4))")


def _build(*overrides):
  return program.build(cli.resolve_config(DEFAULT, TINY + list(overrides)))


def test_devices_resolve_and_bad_counts_are_refused():
  assert _build().devices == 4  # 0: every local device
  assert _build(("parallel.devices", "2")).devices == 2
  with pytest.raises(cli.ConfigError, match=r"parallel\.devices=8 is not allowed.*4 device"):
    _build(("parallel.devices", "8"))
  with pytest.raises(cli.ConfigError, match="batch_size=30 is not divisible by 4 devices"):
    _build(("batch_size", "30"))


@pytest.mark.slow  # ~40 s on 2 quiet cores: three short runs
def test_four_devices_resume_exactly_and_track_one_device(tmp_path):
  """A 4-device run killed (stopped) at step 20 and resumed ends with the bits of an
  uninterrupted one; its metrics track the 1-device run on the same data.

  The data batches are the same for any device count (each device keeps its slice of the
  global batch); only the generator's noise differs (each device folds in its index), so
  the two runs are two random streams of the same training. Measured over 40 steps: the
  largest |Δ| of l1 and loss_energy 0.16, asserted 0.35.
  """
  whole, part = str(tmp_path / "whole"), str(tmp_path / "part")
  program.run(_build(), whole, progress=False)
  program.run(_build(("steps", "20")), part, progress=False)
  resumed = program.run(_build(), part, progress=False)
  assert resumed["resumed_from"] == 20
  assert (open(os.path.join(whole, "metrics.jsonl"), "rb").read()
          == open(os.path.join(part, "metrics.jsonl"), "rb").read())
  one = str(tmp_path / "one")
  program.run(_build(("parallel.devices", "1")), one, progress=False)
  for a, b in zip(record.read_metrics(whole), record.read_metrics(one)):
    for k in ("l1", "loss_energy"):
      assert abs(a[k] - b[k]) < 0.35, (k, a["step"], a[k], b[k])


@pytest.mark.slow  # ~40 s on 2 quiet cores: a group on 4 devices and on 1
@pytest.mark.parametrize("members", [4, 2])
def test_a_group_on_four_devices_equals_the_group_on_one(tmp_path, members):
  """4 members are spread one per device; 2 members cannot be, so each is data-parallel.

  Spread members compute what the one-device group computes (no collective), compiled
  for a slice of one member instead of four, so they differ by float32 rounding, which
  the kNN estimator's neighbour switches amplify as training goes on (after 40 steps up
  to 3.7e-4 relative with jax 0.10, 1.3e-3 with jax 0.12). Compared over the first chunk
  (20 steps): measured |Δ| ≤ 3.1e-6·(|value| + 0.25) (jax 0.10), 4.9e-6·(…) (jax 0.12), and
  1.12e-5·(…) on another 2-core machine (AMD EPYC with AVX-512, jax 0.10.2: one member's
  generator loss at step 10, the rest ≤ 3.6e-6); asserted 2.5e-5·(|value| + 0.25).
  Data-parallel members are other random streams (see above), and their kNN entropy is
  estimated on 8-sample shards, so only the energy's metrics are compared: measured
  |Δ| ≤ 0.26, asserted 0.55.
  """
  lrs = ["1e-3", "2e-3", "5e-4", "3e-3"][:members]
  many = [_build(("optimizer.lr", lr)) for lr in lrs]
  one = [_build(("optimizer.lr", lr), ("parallel.devices", "1")) for lr in lrs]
  dirs_many = [str(tmp_path / f"many{i}") for i in range(members)]
  dirs_one = [str(tmp_path / f"one{i}") for i in range(members)]
  program.run_group(many, dirs_many, str(tmp_path / "g_many"), progress=False)
  program.run_group(one, dirs_one, str(tmp_path / "g_one"), progress=False)
  spread = members == 4
  keys = ("l1", "loss_energy", "loss_generator") if spread else ("l1", "loss_energy")
  for d_many, d_one in zip(dirs_many, dirs_one):
    for a, b in zip(record.read_metrics(d_many), record.read_metrics(d_one)):
      for k in keys:
        if spread and a["step"] <= 20:
          assert abs(a[k] - b[k]) <= 2.5e-5 * (abs(b[k]) + 0.25), (k, a["step"], a[k], b[k])
        elif not spread:
          assert abs(a[k] - b[k]) < 0.55, (k, a["step"], a[k], b[k])
