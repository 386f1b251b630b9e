"""The launcher: overrides, refusals of bad input (no traceback), and an end-to-end smoke run."""

import json
import os
import subprocess
import sys

import ml_collections
import pytest

from ebm_gan import launch
from ebm_gan.registry import ConfigError

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEFAULT = os.path.join(ROOT, "experiments", "configs", "default.py")


def _config(*overrides):
  return launch.resolve_config(DEFAULT, [o.split("=", 1) for o in overrides])


def test_overrides_are_typed():
  c = _config("batch_size=32", "optimizer.lr=1e-2", "model.energy_hidden=(8, 4)",
              "smoke=false", "optimizer.critic_lr=0.5", "dataset=swissroll")
  assert c.batch_size == 32 and isinstance(c.batch_size, int)
  assert c.optimizer.lr == 0.01
  assert c.model.energy_hidden == (8, 4)
  assert c.smoke is False and c.optimizer.critic_lr == 0.5 and c.dataset == "swissroll"


def test_smoke_switch_shrinks_the_run():
  c = _config("smoke=true")
  assert c.steps <= 100 and c.model.energy_hidden == (32, 32)


@pytest.mark.parametrize("overrides, words", [
    (["batchsize=3"], ["batchsize", "batch_size"]),                     # unknown key + hint
    (["optimizer.nam=ogda"], ["optimizer.nam", "name"]),                # unknown nested key
    (["batch_size=abc"], ["batch_size", "'abc'", "integer"]),           # wrong type
    (["optimizer.lr=fast"], ["optimizer.lr", "number"]),                # wrong type
    (["smoke=maybe"], ["smoke", "true or false"]),                      # wrong type
    (["model=3"], ["model", "group"]),                                  # a group, not a value
    (["seed.x=1"], ["seed", "not a group"]),                            # a value, not a group
    (["model.energy_hidden=abc"], ["energy_hidden", "tuple"]),          # wrong type
])
def test_override_refusals(overrides, words):
  with pytest.raises(ConfigError) as e:
    _config(*overrides)
  for w in words:
    assert w in str(e.value)


@pytest.mark.parametrize("overrides, words", [
    (["dataset=mnist2"], ["dataset='mnist2'", "25gaussians", "swissroll"]),
    (["optimizer.name=foo"], ["optimizer.name='foo'", "ogda", "gda"]),
    (["optimizer.lr=-0.1"], ["optimizer.lr=-0.1", "positive"]),
    (["optimizer.lr=0"], ["optimizer.lr=0.0", "positive"]),
    (["batch_size=0"], ["batch_size=0", "positive integer"]),
    (["steps=-5"], ["steps=-5", "positive integer"]),
    (["scheme=leapfrog"], ["scheme='leapfrog'", "alternating", "extragradient"]),
    (["entropy.name=magic"], ["entropy.name='magic'", "knn", "none"]),
    (["game=vae"], ["game='vae'", "ebm", "gan"]),
    (["game=gan", "gan_loss=kl"], ["gan_loss='kl'", "hinge", "wasserstein"]),
    (["penalty.name=r3"], ["penalty.name='r3'", "r1", "wgan_gp"]),
    (["penalty.weight=-1.0"], ["penalty.weight=-1.0", "positive"]),
    (["model.energy_activation=sigmoidal"], ["model.energy_activation='sigmoidal'", "relu"]),
    (["model.energy_hidden=(8, -1)"], ["model.energy_hidden", "positive integers"]),
    (["model.latent_dim=0"], ["model.latent_dim=0"]),
    (["critic_steps=0"], ["critic_steps=0"]),
    (["seed=-1"], ["seed=-1"]),
    (["program=nothing"], ["program='nothing'", "ebm_gan", "toy_games"]),
])
def test_validation_refusals(overrides, words):
  with pytest.raises(ConfigError) as e:
    c = _config(*overrides)
    launch.program(c.program).validate(c)
  for w in words:
    assert w in str(e.value), str(e.value)


def _run(*args, cwd=ROOT, timeout=240):
  return subprocess.run([sys.executable, "-m", "experiments.run", *args], cwd=cwd,
                        capture_output=True, text=True, timeout=timeout)


@pytest.mark.parametrize("args, words", [
    (["--config.batch_size=0"], ["batch_size=0"]),
    (["--config", "nowhere.py"], ["no such config file"]),
    (["--bogus"], ["unknown argument", "usage"]),
    (["--workdir"], ["--workdir needs a value"]),
    (["--workdir=/proc/forbidden/run"], ["not a writable folder"]),
])
def test_cli_user_errors_exit_2_without_traceback(args, words):
  r = _run("--config.smoke=true", *args)
  assert r.returncode == 2, r.stderr
  assert "Traceback" not in r.stderr
  assert r.stderr.startswith("error: ") and r.stderr.count("\n") == 1  # one paragraph
  for w in words:
    assert w in r.stderr


def test_smoke_run_writes_the_run_folder(tmp_path):
  workdir = str(tmp_path / "run")
  r = _run("--config.smoke=true", "--workdir", workdir, "--no-progress")
  assert r.returncode == 0, r.stderr
  for name in ("config.json", "metrics.jsonl", "samples.png", "curves.png", "summary.json"):
    assert os.path.getsize(os.path.join(workdir, name)) > 0, name
  rows = [json.loads(l) for l in open(os.path.join(workdir, "metrics.jsonl"))]
  assert [r["step"] for r in rows] == list(range(1, 101))  # smoke: 100 steps, log_every=1
  assert {"l1", "l3", "entropy", "loss_energy", "loss_generator", "grad_norm/energy",
          "diverged"} <= set(rows[0])
  summary = json.load(open(os.path.join(workdir, "summary.json")))
  assert summary["status"] == "ok" and summary["steps_done"] == 100
  assert summary["num_modes"] == 25 and 0 <= summary["high_quality"] <= 1
  config = json.load(open(os.path.join(workdir, "config.json")))
  assert config["smoke"] is True and config["steps"] == 100
  assert "modes_covered" in r.stdout  # the printed summary table


def test_diverging_run_is_a_result_not_a_crash(tmp_path):
  workdir = str(tmp_path / "run")
  r = _run("--config.smoke=true", "--config.optimizer.name=gda", "--config.optimizer.lr=1e4",
           "--workdir", workdir, "--no-progress")
  assert r.returncode == launch.EXIT_DIVERGED, r.stderr
  assert "Traceback" not in r.stderr
  summary = json.load(open(os.path.join(workdir, "summary.json")))
  assert summary["status"] == "diverged" and summary["diverged_at"] >= 1
  rows = [json.loads(l) for l in open(os.path.join(workdir, "metrics.jsonl"))]
  assert rows[-1]["diverged"] and rows[-1]["step"] == summary["diverged_at"]
