"""The sweep report: mean ± std across seeds per (method, dataset), and its panel figure."""

import csv
import os

import numpy as np
import pytest

from ebm_gan.runner import report

ROWS = [  # two methods (one by label, one by overrides) x one dataset x seeds
    {"member": "000", "label": "A", "dataset": "25gaussians", "seed": "0", "status": "ok",
     "wall_s": "10", "modes_covered": "25", "high_quality": "0.90"},
    {"member": "001", "label": "A", "dataset": "25gaussians", "seed": "1", "status": "ok",
     "wall_s": "12", "modes_covered": "23", "high_quality": "0.80"},
    {"member": "002", "label": "A", "dataset": "25gaussians", "seed": "2", "status": "diverged",
     "wall_s": "3", "modes_covered": "0", "high_quality": "0.0"},
    {"member": "003", "label": "", "dataset": "25gaussians", "seed": "0", "status": "ok",
     "wall_s": "5", "modes_covered": "20", "high_quality": "0.5"},
]


def _write(folder, rows):
  with open(folder / "sweep.csv", "w", newline="") as f:
    w = csv.DictWriter(f, fieldnames=list(rows[0]))
    w.writeheader()
    w.writerows(rows)


def test_aggregate_means_and_sample_stds_over_the_ok_seeds(tmp_path):
  _write(tmp_path, ROWS)
  lines = report.aggregate(report.read_rows(str(tmp_path)))
  a = next(line for line in lines if line["method"] == "A")
  # ok seeds only: modes 25, 23 -> 24 ± 1.414 (sample std); high-quality 90, 80 % -> 85 ± 7.1
  assert a["seeds ok"] == "2/3"
  assert a["modes"] == "24 ± 1.4"
  assert a["high-quality %"] == "85 ± 7.1"
  assert a["wall s"] == "11 ± 1.4"
  unlabelled = next(line for line in lines if line["method"] != "A")
  assert unlabelled["modes"] == "20 ± 0"  # one seed: no spread


def test_write_makes_the_table_and_a_panel_per_method_and_dataset(tmp_path):
  _write(tmp_path, ROWS)
  for name in ("000", "003"):
    os.makedirs(tmp_path / name)
    np.savez_compressed(tmp_path / name / "samples.npz", samples=np.zeros((5, 2)),
                        data=np.ones((5, 2)), scale=2.0)
  paths = report.write(str(tmp_path), str(tmp_path / "out" / "bench"), title="T")
  assert [os.path.basename(p) for p in paths] == ["bench.md", "bench.png"]
  text = open(paths[0]).read()
  assert text.startswith("# T\n") and "| A " in text


def test_the_command_refuses_a_folder_without_a_sweep(tmp_path, capsys):
  from experiments import report as command
  assert command.main([str(tmp_path)]) == 2
  assert "holds no sweep.csv" in capsys.readouterr().err
