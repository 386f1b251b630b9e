"""The runner writes only inside its run folder: never through a link the folder holds."""

import hashlib
import os

import pytest

from ebm_gan.runner import cli
from tiny_runs import DEFAULT, ROOT

ARGS = ["--config.steps=40", "--config.steps_per_dispatch=20", "--config.batch_size=16",
        "--config.checkpoint_every=20", "--config.picture_every=20", "--config.tensorboard_every=0",
        "--config.model.energy_hidden=(8,)", "--config.model.generator_hidden=(8,)",
        "--config.penalty.name=none", "--config.eval_samples=100",
        "--config.evaluation.mcmc_steps=0", "--no-progress"]
# What re-evaluating a finished run writes again (the periodic pictures under pictures/ are
# written, by the same helper, only while training).
ARTIFACTS = ("samples.png", "samples.npz", "evolution.png", "curves.png", "summary.json",
             "summary.md")


def _digest(folder):
  return {n: hashlib.sha256(open(os.path.join(folder, n), "rb").read()).hexdigest()
          for n in sorted(os.listdir(folder))}


@pytest.mark.slow  # two tiny runs: ~15 s on 2 cores
def test_a_rerun_replaces_links_in_its_folder_and_leaves_their_targets_alone(tmp_path):
  """Every artifact of a finished run is replaced by a symlink to a user's file outside the
  folder; running the same command again (it re-evaluates) replaces the links with files
  and changes none of the user's files (it used to write through samples.png, samples.npz
  and evolution.png)."""
  run, outside = tmp_path / "run", tmp_path / "user"
  outside.mkdir()
  assert cli.main([*ARGS, "--workdir", str(run)], DEFAULT) == cli.EXIT_OK
  for name in ARTIFACTS:
    assert (run / name).is_file(), name
    target = outside / name.replace("/", "_")
    target.write_bytes(b"the user's own file " + name.encode())
    os.remove(run / name)
    os.symlink(target, run / name)
  before = _digest(outside)
  assert cli.main([*ARGS, "--workdir", str(run)], DEFAULT) == cli.EXIT_OK
  assert _digest(outside) == before
  for name in ARTIFACTS:
    assert (run / name).is_file() and not (run / name).is_symlink(), name
  assert not [n for n in os.listdir(run) if ".tmp" in n]
