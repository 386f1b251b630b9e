"""Sweeps: a diverging or failing member never loses the others' results or the summary."""

import csv
import json
import os
import signal
import subprocess
import sys
import time
import types

import numpy as np
import pytest

from ebm_gan.runner import cli
from ebm_gan.runner import record
from ebm_gan.runner import sweep
from ebm_gan.runner.programs import ebm_gan as program
from tiny_runs import DEFAULT, ROOT, tiny

# A tiny model (for testing only).
TINY = tiny(40, per_dispatch=20, picture_every=40, tensorboard_every=None,
             optimizer__name="gda")


def _table(workdir):
  with open(os.path.join(workdir, "sweep.csv")) as f:
    return list(csv.DictReader(f))


@pytest.mark.slow  # > 10 s in a full run on the shared 2-core machine
def test_vectorised_sweep_with_a_diverging_member(tmp_path):
  workdir = str(tmp_path / "sweep")
  for f in (program._jitted, program._jitted_mcmc):  # games are values: an equal game of an
    f.cache_clear()                                  # earlier test would have filled them
  cached = [0, 0]
  rc = cli.main([*TINY, "--sweep", "optimizer.lr=1e-3,1e4,2e-3", "--sweep", "seed=3",
                    "--workdir", workdir], DEFAULT)
  assert rc == cli.EXIT_DIVERGED
  # The three members' evaluations share the jitted sampler/critic (one for eval_samples, one
  # for evaluation.entropy_samples) and one MCMC, not three of each.
  assert [f.cache_info().currsize - n
          for f, n in zip((program._jitted, program._jitted_mcmc), cached)] == [2, 1]
  rows = _table(workdir)
  assert [r["status"] for r in rows] == ["ok", "diverged", "ok"]
  assert [r["optimizer.lr"] for r in rows] == ["1e-3", "1e4", "2e-3"]
  assert all(r["vectorised_with"] == "3" for r in rows)  # one vmapped program
  md = open(os.path.join(workdir, "sweep.md")).read().splitlines()
  assert [c.strip() for c in md[3].split("|")[1:5]] == [
      "001_optimizer.lr=1e4_seed=3", "1e4", "3", "diverged"]
  for r in rows:
    member = os.path.join(workdir, r["member"])
    summary = json.load(open(os.path.join(member, "summary.json")))
    assert summary["status"] == r["status"]
    metrics = record.read_metrics(member)
    if r["status"] == "ok":
      assert [m["step"] for m in metrics] == list(range(1, 41))
      assert summary["steps_done"] == 40 and np.isfinite(summary["l3"])
      assert sorted(os.listdir(os.path.join(member, "pictures"))) == [
          "step_0000040.npz", "step_0000040.png"]
    else:
      assert metrics[-1]["diverged"] and metrics[-1]["step"] == summary["diverged_at"]
    assert os.path.exists(os.path.join(member, "curves.png"))

  # Member 0, run on its own, follows the same trajectory (vmap may reorder float sums).
  config = cli.resolve_config(DEFAULT, [a[len("--config."):].split("=", 1) for a in TINY
                                           if a.startswith("--config.")]
                                 + [("optimizer.lr", "1e-3"), ("seed", "3")])
  alone = str(tmp_path / "alone")
  assert program.run(program.build(config), alone, progress=False)["status"] == "ok"
  mapped = record.read_metrics(os.path.join(workdir, rows[0]["member"]))
  for a, b in zip(record.read_metrics(alone), mapped):
    for k in ("l1", "l3", "loss_energy", "loss_generator", "param_norm/generator"):
      np.testing.assert_allclose(a[k], b[k], rtol=2e-4, atol=1e-5, err_msg=f"{k} {a['step']}")


def test_a_failing_member_keeps_the_others(tmp_path):
  class Boom(RuntimeError):
    pass

  def run(config, workdir, progress=True):
    del progress
    if config.lr < 0:
      raise Boom("member blew up")
    os.makedirs(workdir, exist_ok=True)
    return {"status": "ok", "wall_s": 0.1, "final": 2 * config.lr}

  fake = types.SimpleNamespace(run=run)
  members = sweep.expand_grid(["lr=1,-1,3"])
  configs = [types.SimpleNamespace(program="fake", lr=float(v)) for _, v in
             (m[0] for m in members)]
  rows = sweep.run_members(members, [fake] * len(configs), configs, str(tmp_path),
                           progress=False, vectorise=False)
  assert [r["status"] for r in rows] == ["ok", "failed", "ok"]
  assert rows[2]["final"] == 6.0 and "member blew up" in rows[1]["error"]
  assert "Boom" in open(tmp_path / rows[1]["member"] / "error.txt").read()
  assert [r["status"] for r in _table(str(tmp_path))] == ["ok", "failed", "ok"]
  assert sweep.exit_status(rows) == "failed"


def test_parts_command_refuses_bad_input_before_starting(tmp_path, capsys):
  from experiments import parts
  bench = os.path.join(ROOT, "experiments", "configs", "toy_benchmark.py")
  assert parts.part_values(bench, "label")[:2] == ["GAN (non-saturating)", "WGAN-GP"]
  assert len(parts.part_values(bench, "label")) == 7
  for argv, words in ((["--config", DEFAULT, "--by", "seed"], "declares no sweep(add)"),
                      (["--config", bench, "--by", "lr"], "no sweep member sets 'lr'"),
                      (["--config", bench, "--by", "label", "--jobs", "-1"], "--jobs=-1"),
                      (["--config", bench, "--by", "label", "--", "--config.batch_size=0"],
                       "batch_size=0 is not allowed")):
    assert parts.main(["--workdir", str(tmp_path / "w")] + argv) == 2
    assert words in capsys.readouterr().err
  assert not os.path.exists(tmp_path / "w")  # nothing started


@pytest.mark.slow  # two runner processes, each compiling a tiny program: ~30 s
def test_parts_run_side_by_side_and_table_together(tmp_path):
  """``experiments.parts``: one process per label, each running only its own members in its
  own folder; ``experiments.report`` tables the parts as one benchmark."""
  config = tmp_path / "two_methods.py"
  config.write_text(
      "from experiments.configs.default import get_config, finalize\n"
      "def sweep(add):\n"
      "  for label, lr in (('A', 1e-3), ('B', 3e-3)):\n"
      "    for seed in (0, 1):\n"
      "      add(label=label, seed=seed, **{'optimizer.lr': lr})\n")
  work = tmp_path / "bench"
  r = subprocess.run([sys.executable, "-m", "experiments.parts", "--config", str(config),
                      "--by", "label", "--workdir", str(work), "--",
                      "--config.negative_phase.mala_steps=0",
                      "--config.evaluation.mcmc_steps=0"] + TINY,
                     cwd=ROOT, capture_output=True, text=True, timeout=300)
  assert r.returncode == 0, r.stdout + r.stderr
  assert json.load(open(work / "parts.json")) == {"part-0": {"label": "A"},
                                                  "part-1": {"label": "B"}}
  for part, label in (("part-0", "A"), ("part-1", "B")):
    rows = _table(work / part)
    assert [(row["label"], row["seed"], row["status"]) for row in rows] == [
        (label, "0", "ok"), (label, "1", "ok")]
  r = subprocess.run([sys.executable, "-m", "experiments.report", str(work / "part-0"),
                      str(work / "part-1"), "--out", str(work / "table")],
                     cwd=ROOT, capture_output=True, text=True, timeout=120)
  assert r.returncode == 0, r.stderr
  text = open(work / "table.md").read()
  assert "| A " in text and "| B " in text and "Members: 4 (4 ok)" in text


@pytest.mark.slow  # two runner processes started and stopped: ~20 s
def test_sigterm_to_parts_stops_every_part_resumably(tmp_path):
  config = tmp_path / "two_methods.py"
  config.write_text(
      "from experiments.configs.default import get_config, finalize\n"
      "def sweep(add):\n"
      "  for label in ('A', 'B'):\n"
      "    add(label=label, seed=0)\n")
  work = tmp_path / "bench"
  long_run = [a for a in TINY if not a.startswith("--config.steps=")] + [
      "--config.steps=1000000", "--config.checkpoint_every=20",
      "--config.negative_phase.mala_steps=0", "--config.evaluation.mcmc_steps=0"]
  parts = subprocess.Popen([sys.executable, "-m", "experiments.parts", "--config", str(config),
                            "--by", "label", "--workdir", str(work), "--"] + long_run,
                           cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
  members = [work / "part-0" / "000_label=A_seed=0", work / "part-1" / "000_label=B_seed=0"]
  metrics = [m / "metrics.jsonl" for m in members]
  deadline = time.time() + 240
  while not all(m.exists() and m.stat().st_size for m in metrics):  # both parts are training
    assert parts.poll() is None and time.time() < deadline, parts.communicate()
    time.sleep(0.5)
  parts.send_signal(signal.SIGTERM)
  out, err = parts.communicate(timeout=120)
  assert parts.returncode == 143, out + err
  assert "stopping 2 running part(s)" in err
  for i in (0, 1):  # each part stopped as a run does on SIGTERM: resumable, nothing lost
    log = (work / "logs" / f"part-{i}.log").read_text()
    assert "terminated (SIGTERM); run the same command" in log, log
    assert cli.has_checkpoint(str(members[i]))


def test_a_part_killed_by_a_signal_counts_as_the_shell_reports_it():
  from experiments import parts
  assert parts._exit_status(-9) == 137 and parts._exit_status(-15) == 143
  assert parts._exit_status(0) == 0 and parts._exit_status(3) == 3  # ok; a member diverged
