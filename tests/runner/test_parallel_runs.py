"""The runner on 4 fake CPU devices: data-parallel runs, their resume, and sweep groups."""

import os

import jax
import numpy as np
import pytest

from ebm_gan.runner import cli
from ebm_gan.runner import record
from ebm_gan.runner.programs import ebm_gan as program
from tiny_runs import DEFAULT, ROOT

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


def _gap(a: dict, b: dict) -> tuple[float, str]:
  """The largest |a − b| / (|b| + 0.1) over two metric rows' values, and its metric."""
  gaps = {k: abs(a[k] - b[k]) / (abs(b[k]) + 0.1) for k in b if isinstance(b[k], float)}
  worst = max(gaps, key=gaps.get)
  return gaps[worst], worst


# OGDA: Adam's first step g/(|g| + ε) turns the rounding noise of a zero gradient (the energy's
# output bias, which L1 does not move) into ±0.1·lr, a difference of 2e-4 in update_norm/energy.
OGDA = ("optimizer.name", "ogda")


@pytest.mark.slow  # ~40 s on 2 quiet cores: three short runs
def test_four_devices_resume_exactly_and_compute_the_one_device_run(tmp_path):
  """A 4-device run killed (stopped) at step 20 and resumed ends with the bits of an
  uninterrupted one; it computes the 1-device run (parallel.estimators='global').

  Every metric of step 1 within 1e-5·(|value| + 0.1) (measured 0); over the 40 steps within
  1e-2·(…): measured 5.8e-4 (kNN's neighbour switches grow float32 rounding, see
  test_device_invariance.py), against 0.16 absolute before, when each device estimated on
  its own shard with its own noise.
  """
  whole, part = str(tmp_path / "whole"), str(tmp_path / "part")
  program.run(_build(OGDA), whole, progress=False)
  program.run(_build(OGDA, ("steps", "20")), part, progress=False)
  resumed = program.run(_build(OGDA), part, progress=False)
  assert resumed["resumed_from"] == 20
  assert (open(os.path.join(whole, "metrics.jsonl"), "rb").read()
          == open(os.path.join(part, "metrics.jsonl"), "rb").read())
  one = str(tmp_path / "one")
  program.run(_build(OGDA, ("parallel.devices", "1")), one, progress=False)
  rows_many, rows_one = record.read_metrics(whole), record.read_metrics(one)
  assert len(rows_many) == len(rows_one) == 40
  assert _gap(rows_many[0], rows_one[0])[0] <= 1e-5
  for a, b in zip(rows_many, rows_one):
    assert _gap(a, b)[0] <= 1e-2, (a["step"], _gap(a, b))


@pytest.mark.slow  # ~40 s on 2 quiet cores: a group on 4 devices and on 1
@pytest.mark.parametrize("members", [4, 2])
def test_a_group_on_four_devices_equals_the_group_on_one(tmp_path, members):
  """4 members are spread one per device; 2 members cannot be, so each runs over the
  global batch on all 4 (parallel.estimators='global'). Either way a member computes what
  the one-device group computes.

  Spread members are compiled for a slice of one member instead of four, so they differ by
  float32 rounding, which the kNN estimator's neighbour switches amplify as training goes
  on (after 40 steps up to 3.7e-4 relative with jax 0.10, 1.3e-3 with jax 0.12). Compared
  over the first chunk (20 steps): measured |Δ| ≤ 3.1e-6·(|value| + 0.25) (jax 0.10),
  4.9e-6·(…) (jax 0.12), and 1.12e-5·(…) on another 2-core machine (AMD EPYC with AVX-512,
  jax 0.10.2); asserted 2.5e-5·(|value| + 0.25). Members over the global batch: every metric
  of step 1 within 1e-5·(|value| + 0.1), and of the first chunk within 1e-2·(…) (measured
  with 2 members: see the single run above).
  """
  lrs = ["1e-3", "2e-3", "5e-4", "3e-3"][:members]
  many = [_build(OGDA, ("optimizer.lr", lr)) for lr in lrs]
  one = [_build(OGDA, ("optimizer.lr", lr), ("parallel.devices", "1")) for lr in lrs]
  dirs_many = [str(tmp_path / f"many{i}") for i in range(members)]
  dirs_one = [str(tmp_path / f"one{i}") for i in range(members)]
  program.run_group(many, dirs_many, str(tmp_path / "g_many"), progress=False)
  program.run_group(one, dirs_one, str(tmp_path / "g_one"), progress=False)
  for d_many, d_one in zip(dirs_many, dirs_one):
    rows_many, rows_one = record.read_metrics(d_many), record.read_metrics(d_one)
    assert len(rows_many) == len(rows_one) == 40
    for a, b in zip(rows_many[:20], rows_one[:20]):
      if members == 4:
        for k in ("l1", "loss_energy", "loss_generator"):
          assert abs(a[k] - b[k]) <= 2.5e-5 * (abs(b[k]) + 0.25), (k, a["step"], a[k], b[k])
      else:
        assert _gap(a, b)[0] <= (1e-5 if a["step"] == 1 else 1e-2), (a["step"], _gap(a, b))
