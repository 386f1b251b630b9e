"""The 'toy_games' program end to end (smoke size) and its config errors."""

import csv
import importlib.util
import os

import numpy as np
import pytest

from ebm_gan.games import vectorised
from ebm_gan.runner import cli
from ebm_gan.runner.programs import toy_games
from ebm_gan.runner.registry import ConfigError

CONFIG = os.path.join(os.path.dirname(__file__), os.pardir, os.pardir, "experiments", "configs",
                      "toy_games.py")


def _config(**overrides):
  spec = importlib.util.spec_from_file_location("toy_games_config", CONFIG)
  module = importlib.util.module_from_spec(spec)
  spec.loader.exec_module(module)
  config = module.get_config()
  for key, value in overrides.items():
    node, *path = key.split(".")
    target = config if not path else config[node]
    target[path[0] if path else node] = value
  return config


def test_small_run_end_to_end(tmp_path):
  config = _config(games=("bilinear",), methods=("gda", "ogda@alternating"), num_steps=200,
                   num_seeds=1, learning_rates=(0.1, 0.2))
  summary = toy_games.run(toy_games.build(config), str(tmp_path), progress=False)
  assert [(r["method"], r["learning_rate"]) for r in summary["rows"]] == [
      ("gda", 0.1), ("gda", 0.2), ("ogda@alternating", 0.1), ("ogda@alternating", 0.2)]
  # Linear game: measured = theory up to the faster modes still decaying in the fitted
  # window (steps 100-200): ~1e-4 here for alternating OGDA, ~1e-9 for GDA.
  for r in summary["rows"]:
    assert r["relative_error"] < 1e-3, r
  assert os.path.getsize(tmp_path / "trajectories_bilinear.png") > 0


@pytest.mark.slow  # ~7 s alone, ~13 s on a loaded 2-core machine
def test_smoke_run_writes_tables_and_plots(tmp_path):
  config = _config(smoke=True)
  summary = toy_games.run(toy_games.build(config), str(tmp_path), progress=False)
  n_rows = len(config.games) * len(config.methods) * 2  # smoke: 2 learning rates
  assert summary["status"] == "ok" and len(summary["rows"]) == n_rows
  assert summary["num_runs"] == n_rows * 2  # smoke: 2 seeds
  for name in ("results.md", "results.csv", "runs.csv", "config.json"):
    assert os.path.getsize(tmp_path / name) > 0
  for game in config.games:
    for kind in ("trajectories", "log_distance"):
      assert os.path.getsize(tmp_path / f"{kind}_{game}.png") > 0
  with open(tmp_path / "results.csv") as f:
    rows = list(csv.DictReader(f))
  assert list(rows[0]) == ["game", "method", "learning_rate", "final_distance", "measured_rate",
                           "theoretical_rate", "relative_error", "diverged", "diverged_at_step"]
  # On the linear games the measured rate of every GDA/OGDA/EG run matches the linearised map
  # (300 steps; 1e-3 relative covers the slope fit over transients on the quadratic game).
  for r in rows:
    if r["game"] != "dirac_gan" and r["method"] != "optimistic_adam":
      assert float(r["relative_error"]) < 1e-3, r
    if r["game"] == "bilinear" and r["method"] == "gda":
      eta = float(r["learning_rate"])
      assert float(r["theoretical_rate"]) == pytest.approx(np.sqrt(1 + eta ** 2), rel=1e-12)


def test_launcher_finalize_applies_smoke():
  config = cli.resolve_config(CONFIG, [("smoke", "True")])
  assert config.num_steps == 300 and config.num_seeds == 2 and len(config.learning_rates) == 2
  toy_games.build(config)


@pytest.mark.parametrize("overrides,pattern", [
    ({"methods": ("gda", "gdx")}, r"methods\[1\]='gdx' is not a known method; allowed: "
                                  r"alternating_gda, extragradient, gda, ogda, optimistic_adam"),
    ({"methods": ("ogda@sideways",)}, r"methods\[0\]='ogda@sideways': 'sideways' is not a "
                                      r"known update scheme; allowed: alternating, "
                                      r"extragradient, simultaneous"),
    ({"methods": ("lion@simultaneous",)}, r"'lion' is not a known optimizer; allowed: adam"),
    ({"learning_rates": (0.1, 0.0)}, r"learning_rates=\(0\.1, 0\.0\).*entry 1 is 0\.0.*positive"),
    ({"learning_rates": (-0.1,)}, r"learning_rates=\(-0\.1,\).*positive"),
    ({"learning_rates": ()}, r"learning_rates=\(\) is not allowed"),
    ({"bilinear.matrix": "given", "bilinear.dim_x": 2, "bilinear.A": ((1.0, 2.0, 3.0),)},
     r"bilinear\.A=\(\(1\.0, 2\.0, 3\.0\),\) has shape \(1, 3\); allowed: shape "
     r"\(bilinear\.dim_x, bilinear\.dim_y\) = \(2, 1\)"),
    ({"bilinear.b": (1.0, 2.0)}, r"bilinear\.b=\(1\.0, 2\.0\) has shape \(2,\).*\(1,\)"),
    ({"bilinear.matrix": "eye"}, r"bilinear\.matrix='eye'.*identity, random, given"),
    ({"games": ("bilinear", "rps")}, r"games\[1\]='rps' is not a known toy game; allowed: "
                                     r"bilinear, dirac_gan, quadratic"),
    ({"dirac_gan.loss": "hinge"}, r"dirac_gan\.loss='hinge'.*minimax, non_saturating"),
    ({"num_steps": 0}, r"num_steps=0 is not allowed"),
    ({"critic_lr_ratio": -2.0}, r"critic_lr_ratio=-2\.0 is not allowed"),
])
def test_bad_config_is_refused_before_compiling(overrides, pattern, monkeypatch):
  def fail(*args, **kwargs):
    raise AssertionError("compiled despite a bad config")
  monkeypatch.setattr(vectorised, "run_groups", fail)
  config = _config(**overrides)
  with pytest.raises(ConfigError, match=pattern):
    toy_games.build(config)


def test_bad_optimizer_option_is_refused(monkeypatch):
  config = _config()
  config.optimizer_options.ogda.first_step = "twice"
  with pytest.raises(ConfigError, match=r"optimizer_options\.ogda\.first_step='twice'"):
    toy_games.build(config)


def test_launcher_reports_user_error_with_status_2(capsys):
  status = cli.main(["--config", CONFIG, "--config.learning_rates=(0.1, -1.0)"], CONFIG)
  assert status == cli.EXIT_USER_ERROR
  assert "learning_rates" in capsys.readouterr().err
