"""Image runs through the runner (issue 10): config → conv models, CLI smoke run with the
mode-counting summary, exact resume, MNIST under tfds mock_data.

The bad-input refusals (conv models on 2-D data, MLPs / flow on images, missing tfds data)
are rows of tests/runner/test_cli.py BAD_INPUTS.
"""

import json
import os

import jax
import numpy as np
import pytest

from ebm_gan import classifier, models
from ebm_gan.runner import cli
from ebm_gan.runner.programs.ebm_gan import config as config_lib
from ebm_gan.runner.programs.ebm_gan import image_evaluation
from ebm_gan.runner.programs.ebm_gan import runner_fields
from ebm_gan.runner.programs import ebm_gan as program
from ebm_gan.runner.programs.ebm_gan import trainables
from tiny_runs import CONFIGS, ROOT

pytest.importorskip("sklearn")


def _config(name, *overrides):
  return cli.resolve_config(os.path.join(CONFIGS, f"{name}.py"),
                            [o.split("=", 1) for o in overrides])


def test_image_config_builds_conv_players_of_the_dataset_shape():
  exp = config_lib.build(_config("stacked_digits"))
  assert config_lib.data_shape(exp.dataset) == (8, 8, 3)
  assert isinstance(exp.game.energy, models.ConvEnergy)
  assert exp.game.generator.image_shape == (8, 8, 3) and exp.game.generator.width == 16
  assert exp.dataset.num_classes == 1000
  # convs in lax.scan are ~14x slower on XLA:CPU (BUILD.md): one jitted step per call there
  assert trainables.dispatch(exp) == ("per_step" if jax.default_backend() == "cpu" else "scan")
  toy = config_lib.build(_config("default"))
  assert config_lib.data_shape(toy.dataset) == (2,) and trainables.dispatch(toy) == "scan"


def test_classifier_cache_defaults_to_the_user_cache_not_the_run_folder(monkeypatch, tmp_path):
  monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
  c = _config("stacked_digits")
  assert runner_fields.classifier_cache_dir(c) == str(tmp_path / "ebm_gan" / "classifiers")
  c.evaluation.classifier_cache = "~/elsewhere"
  assert runner_fields.classifier_cache_dir(c) == os.path.expanduser("~/elsewhere")


def _run(capsys, workdir, *args):
  rc = cli.main(["--workdir", str(workdir), "--no-progress", *args],
                os.path.join(CONFIGS, "stacked_digits.py"))
  out = capsys.readouterr()
  assert rc == 0, out.err
  with open(os.path.join(workdir, "summary.json")) as f:
    return json.load(f)


@pytest.mark.slow  # ~60 s on the loaded 2-core machine: compiles a conv step, trains the classifier
def test_stacked_digits_smoke_run_counts_modes_and_resumes_exactly(tmp_path, capsys):
  common = ["--config.smoke=true", f"--config.evaluation.classifier_cache={tmp_path / 'cache'}"]
  whole = _run(capsys, tmp_path / "whole", *common)
  for name in ("samples.png", "data.png", "summary.md", "metrics.jsonl"):
    assert os.path.exists(tmp_path / "whole" / name), name
  assert whole["status"] == "ok" and whole["steps_done"] == 4
  assert whole["num_modes"] == 1000 and 1 <= whole["modes_covered"] <= 500
  assert whole["mode_samples"] == 500 and 0 <= whole["mode_kl"] <= np.log(1000)
  # the classifier is real: 98% on held-out digits after 600 Adam steps (tests/lib/test_classifier.py)
  assert whole["classifier_accuracy"] >= 0.95 and whole["classifier_trained"]
  assert np.isfinite(whole["mmd2"])
  # FD-digits of the 500 samples against the 359 held-out stacks, above what as many training
  # stacks score (docs/theory.md (10.4)–(10.5))
  assert whole["fd_heldout_samples"] == 359
  assert np.isfinite(whole["fd_digits"]) and np.isfinite(whole["fd_digits_floor"])
  assert 0 < whole["fd_digits_floor"] < whole["fd_digits"]
  # Two steps, then resumed to four (the classifier now comes from the cache): the same bits.
  _run(capsys, tmp_path / "split", *common, "--config.steps=2")
  split = _run(capsys, tmp_path / "split", *common)
  assert split["resumed_from"] == 2 and not split["classifier_trained"]
  with open(tmp_path / "whole" / "metrics.jsonl") as a, \
       open(tmp_path / "split" / "metrics.jsonl") as b:
    assert a.read() == b.read()
  for key in ("mmd2", "modes_covered", "mode_kl", "classifier_accuracy", "fd_digits",
              "fd_digits_floor"):
    assert split[key] == whole[key], key


def test_fd_digits_of_noise_and_of_overflowing_samples():
  """The runner's FD-digits (docs/theory.md (10.4)) with an untrained classifier: uniform noise
  scores above the floor of as many training stacks; samples so large that the classifier's
  features overflow (finite pixels of 3e38, near float32's largest) leave fd_digits out instead of failing."""
  exp = config_lib.build(_config("stacked_digits"))
  fd = image_evaluation.DigitsFD(exp, 200)
  params = classifier.DigitClassifier(10).init(jax.random.PRNGKey(0), np.zeros((1, 8, 8, 1)))
  noise = np.random.default_rng(0).uniform(-1, 1, (200, 8, 8, 3)).astype(np.float32)
  found = fd(params, noise)
  assert found["fd_heldout_samples"] == 359 and 0 < found["fd_digits_floor"] < found["fd_digits"]
  huge = fd(params, np.full((200, 8, 8, 3), 3e38, np.float32))
  assert "fd_digits" not in huge and huge["fd_digits_floor"] == found["fd_digits_floor"]


@pytest.mark.slow  # ~30 s loaded: compiles a 28×28 conv step
def test_mnist_under_mock_data_builds_and_trains(tmp_path):
  tfds = pytest.importorskip("tensorflow_datasets")
  config = _config("mnist", "smoke=true", f"data.dir={tmp_path}")
  with tfds.testing.mock_data(num_examples=32):
    exp = config_lib.build(config)
  assert config_lib.data_shape(exp.dataset) == (28, 28, 1)
  summary = program.run(exp, str(tmp_path / "run"), progress=False)
  assert summary["status"] == "ok" and summary["steps_done"] == 4
  assert np.isfinite(summary["mmd2"]) and "modes_covered" not in summary
  assert os.path.exists(tmp_path / "run" / "samples.png")
