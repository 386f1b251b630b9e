"""``--help`` and ``--dry-run``: what the launcher says about a config without running it."""

import os

import pytest

from ebm_gan.runner import cli
from ebm_gan.runner.programs.ebm_gan import config as config_lib

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DEFAULT = os.path.join(REPO, "experiments", "configs", "default.py")
TOY = os.path.join(REPO, "experiments", "configs", "toy_games.py")


def _field_line(text, key):
  """The field's line and its wrapped continuation lines, joined."""
  lines = text.splitlines()
  i = next(i for i, line in enumerate(lines) if line.split()[:1] == [key])
  block = [lines[i]]
  for line in lines[i + 1:]:
    if not line.startswith("     "):
      break
    block.append(line.strip())
  return " ".join(block)


def test_help_lists_flags_fields_types_and_allowed_names(capsys):
  assert cli.main(["--help"], DEFAULT) == 0
  out = capsys.readouterr().out
  assert out.startswith("usage: python -m experiments.run")
  for flag in ("--workdir", "--sweep", "--resume", "--dry-run", "--no-progress"):
    assert flag in out
  line = _field_line(out, "optimizer.name")
  assert "'optimistic_adam'" in line and "str" in line
  for name in config_lib.OPTIMIZERS.names():
    assert name in line
  assert "int" in _field_line(out, "steps") and "48000" in _field_line(out, "steps")
  assert "swissroll" in _field_line(out, "dataset")


def test_help_shows_values_after_overrides_and_finalize(capsys):
  assert cli.main(["--config.steps=123", "--config.smoke=true", "-h"], DEFAULT) == 0
  out = capsys.readouterr().out
  assert "123" in _field_line(out, "steps")  # an explicit override wins over smoke
  assert "64" in _field_line(out, "batch_size")  # the smoke switch applied
  assert "True" in _field_line(out, "smoke")


def test_help_for_the_toy_games_config(capsys):
  assert cli.main(["--config", TOY, "--help"], DEFAULT) == 0
  out = capsys.readouterr().out
  assert "program 'toy_games'" in out
  assert "dirac_gan" in _field_line(out, "games")
  assert "non_saturating" in out and "alternating_gda" in out


def test_help_refuses_a_wrong_key_with_exit_2(capsys):
  assert cli.main(["--config.nope=1", "--help"], DEFAULT) == 2
  assert "not a config key" in capsys.readouterr().err


def test_dry_run_builds_and_writes_nothing(tmp_path, capsys):
  workdir = tmp_path / "run"
  assert cli.main(["--config.smoke=true", "--dry-run", f"--workdir={workdir}"], DEFAULT) == 0
  assert "dry run" in capsys.readouterr().out
  assert not workdir.exists()


@pytest.mark.parametrize("args", [["--config.dataset=nope"], ["--sweep", "optimizer.name=gda,nope"]])
def test_dry_run_refuses_what_a_run_would_refuse(tmp_path, capsys, args):
  assert cli.main(args + ["--dry-run", f"--workdir={tmp_path / 'x'}"], DEFAULT) == 2
  assert "nope" in capsys.readouterr().err


FREE_TEXT = {"data.dir", "evaluation.classifier_cache", "label", "parallel.coordinator"}


def test_every_named_choice_field_lists_what_it_allows(capsys):
  """Every str field of the default config but the free-text ones shows 'one of:' (the
  schedules, OGDA's first step, the estimators' layout, SSGE's bandwidth were missing)."""
  assert cli.main(["--help"], DEFAULT) == 0
  out = capsys.readouterr().out
  keys = [line.split()[0] for line in out.splitlines()
          if line.startswith("  ") and len(line.split()) >= 3 and line.split()[2] == "str"]
  assert len(keys) > 20
  missing = [k for k in keys if k not in FREE_TEXT and "one of:" not in _field_line(out, k)]
  assert not missing
  assert "constant | linear | cosine" in _field_line(out, "penalty.schedule")
  assert "repeat | zero" in _field_line(out, "optimizer.ogda.first_step")


CONFIG_FILES = sorted(os.path.join(REPO, "experiments", "configs", n)
                      for n in os.listdir(os.path.join(REPO, "experiments", "configs"))
                      if n.endswith(".py") and not n.startswith("_"))


@pytest.mark.parametrize("path", CONFIG_FILES, ids=os.path.basename)
def test_every_field_of_every_config_file_says_what_it_does(path, capsys):
  """Each field line is followed by an indented line that starts with its description."""
  from ebm_gan.runner import config_file, help as help_lib
  from ebm_gan.runner.cli import PROGRAMS
  config = config_file.resolve_config(path, [])
  descriptions = PROGRAMS.get(config.program, key="program").DESCRIPTIONS
  keys = [k for k, _, _ in help_lib.fields(config)]
  assert [k for k in keys if not descriptions.get(k)] == []
  assert cli.main(["--config", path, "--help"], DEFAULT) == 0
  lines = capsys.readouterr().out.splitlines()
  for key in keys:
    i = next(i for i, line in enumerate(lines) if line.split()[:1] == [key])
    assert lines[i + 1].strip().startswith(descriptions[key][:30]), key


def test_help_lists_the_config_files_with_their_first_docstring_line(capsys):
  assert cli.main(["--help"], DEFAULT) == 0
  out = capsys.readouterr().out
  listing = out[out.index("config files (--config PATH):"):]
  for path in CONFIG_FILES:
    assert os.path.basename(path) in listing
  assert "The toy benchmark: every EBM-GAN entropy estimator" in listing
  assert "StackedMNIST (28×28×3, 1000 modes)" in " ".join(listing.split())
