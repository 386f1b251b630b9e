"""The sweep report: mean ± std across seeds per (method, dataset), and its panel figure."""

import csv
import json
import os

import numpy as np
import pytest

from ebm_gan.runner import report

ROWS = [  # two methods (one by label, one by overrides) x one dataset x seeds
    {"member": "000", "label": "A", "dataset": "25gaussians", "seed": "0", "status": "ok",
     "wall_s": "10", "modes_covered": "25", "modes_covered_20": "24", "high_quality": "0.90"},
    {"member": "001", "label": "A", "dataset": "25gaussians", "seed": "1", "status": "ok",
     "wall_s": "12", "modes_covered": "23", "modes_covered_20": "21", "high_quality": "0.80"},
    {"member": "002", "label": "A", "dataset": "25gaussians", "seed": "2", "status": "diverged",
     "wall_s": "3", "modes_covered": "0", "modes_covered_20": "0", "high_quality": "0.0"},
    {"member": "003", "label": "", "dataset": "25gaussians", "seed": "0", "status": "ok",
     "wall_s": "5", "modes_covered": "20", "modes_covered_20": "17", "high_quality": "0.5"},
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
  # ok seeds only: modes 25, 23 -> 24 ± 1.414 (sample std), at 20: 24, 21 -> 22.5 ± 2.1;
  # high-quality 90, 80 % -> 85 ± 7.1
  assert a["seeds ok"] == "2/3"
  assert a["modes"] == "24 ± 1.4" and a["modes ≥ 20"] == "22.5 ± 2.1"
  assert a["high-quality %"] == "85 ± 7.1"
  assert a["wall s"] == "11 ± 1.4"
  unlabelled = next(line for line in lines if line["method"] != "A")
  assert unlabelled["modes"] == "20 ± 0"  # one seed: no spread
  assert unlabelled["wall s"] == "5"  # one wall time: no "± 0"
  assert list(a) == ["method", "dataset", "seeds ok", "modes", "modes ≥ 20", "high-quality %",
                     "wall s"]
  grouped = [dict(r, wall_s="30") for r in ROWS]  # seeds trained as one vmapped group
  _write(tmp_path, grouped)
  assert report.aggregate(report.read_rows(str(tmp_path)))[0]["wall s"] == "30"
  assert unlabelled["method"] == "the config as given"  # no label, no override but the seed


def test_by_seed_lists_each_ok_seed_in_seed_order(tmp_path):
  _write(tmp_path, [ROWS[1], ROWS[0], ROWS[2], dict(ROWS[0], member="004", seed="3",
                                                       high_quality="0.75", modes_covered="")])
  (a,) = report.aggregate(report.read_rows(str(tmp_path)), by_seed=True)
  assert a["seeds ok"] == "3/4 (0, 1, 3)"
  assert a["high-quality %"] == "90 / 80 / 75"
  assert a["modes"] == "25 / 23 / –"  # seed 3 did not report it


def test_a_sweep_without_a_dataset_override_reads_the_members_config(tmp_path):
  rows = [{k: v for k, v in r.items() if k != "dataset"} for r in ROWS]
  _write(tmp_path, rows)
  for r in rows:
    os.makedirs(tmp_path / r["member"])
    with open(tmp_path / r["member"] / "config.json", "w") as f:
      json.dump({"dataset": "8gaussians", "seed": int(r["seed"])}, f)
  os.remove(tmp_path / "003" / "config.json")  # unreadable: left blank, not guessed
  lines = report.aggregate(report.read_rows(str(tmp_path)))
  assert [list(line) for line in lines][0] == list(lines[1])  # the same columns in each row
  assert [(line["method"], line["dataset"]) for line in lines] == [
      ("A", "8gaussians"), ("the config as given", "")]


def test_write_makes_the_table_and_a_panel_per_method_and_dataset(tmp_path):
  _write(tmp_path, ROWS)
  for name in ("000", "003"):
    os.makedirs(tmp_path / name)
    np.savez_compressed(tmp_path / name / "samples.npz", samples=np.zeros((5, 2)),
                        data=np.ones((5, 2)), scale=2.0)
  paths = report.write(str(tmp_path), str(tmp_path / "out" / "bench"), title="T")
  assert [os.path.basename(p) for p in paths] == ["bench.md", "bench.csv", "bench.png"]
  text = open(paths[0]).read()
  assert text.startswith("# T\n") and "| A " in text
  with open(paths[1], newline="") as f:  # seed by seed, as the sweep wrote them
    assert [(r["label"], r["seed"], r["high_quality"]) for r in csv.DictReader(f)] == [
        (r["label"], r["seed"], r["high_quality"]) for r in ROWS]


def test_the_command_refuses_a_folder_without_a_sweep(tmp_path, capsys):
  from experiments import report as command
  assert command.main([str(tmp_path)]) == 2
  assert "holds no sweep.csv" in capsys.readouterr().err


def _provenance(folder, member, revision, argv=("/x/experiments/run.py", "--sweep", "seed=0:2")):
  os.makedirs(folder / member, exist_ok=True)
  with open(folder / member / "provenance.json", "w") as f:
    json.dump({"git_revision": revision, "argv": list(argv), "platform": "Linux",
               "versions": {"jax": "0.10.2", "jaxlib": "0.10.2", "python": "3.11.7"}}, f)


def test_notes_name_the_one_revision_and_command_of_a_clean_sweep(tmp_path):
  for member in ("000", "001", "002", "003"):
    _provenance(tmp_path, member, "abc123")
  notes = report.provenance_notes(str(tmp_path), ROWS)
  assert notes[0] == "Members: 4 (3 ok); provenance read for 4."
  assert "Git revision: `abc123`" in notes
  assert "Command: `python -m experiments.run --sweep seed=0:2`" in notes
  assert "Devices: `not recorded`" in notes  # a run folder from before the field
  assert not any("differ" in n for n in notes)
  assert not any("†" in n or "vmapped" in n for n in notes)  # none resumed, none vmapped


def test_notes_flag_members_made_by_different_revisions(tmp_path):
  for member, revision in (("000", "abc123"), ("001", "abc123"), ("002", "abc123"),
                           ("003", "def456-dirty")):
    _provenance(tmp_path, member, revision)
  notes = report.provenance_notes(str(tmp_path), ROWS)
  line = next(n for n in notes if n.startswith("Git revision"))
  assert "the members differ" in line
  assert "`abc123` (3 members)" in line and "`def456-dirty` (1 members)" in line


def test_a_wall_time_missing_earlier_segments_is_marked_and_explained(tmp_path):
  """A run folder from before the wall record (no ``wall_s_from_step``) that was resumed,
  and one whose record of the earlier segments was missing (from step 5000), are marked; a
  resumed member whose wall time sums every segment (from step 0) is not."""
  rows = [dict(r, resumed_from="0", vectorised_with="2", wall_s_from_step="") for r in ROWS]
  rows[1]["resumed_from"] = "5000"  # seed 1 of method A came back from a checkpoint
  rows[3].update(resumed_from="5000", wall_s_from_step="0")  # resumed, every segment counted
  _write(tmp_path, rows)
  lines = report.aggregate(report.read_rows(str(tmp_path)))
  assert next(line for line in lines if line["method"] == "A")["wall s"] == "11 ± 1.4 †"
  assert "†" not in next(line for line in lines if line["method"] != "A")["wall s"]
  paths = report.write(str(tmp_path), str(tmp_path / "bench"))
  text = open(paths[0]).read()
  assert "counts only from the resume" in text
  assert "the group that trained up to 2 seeds" in text
  assert "provenance read for 0" in text  # no provenance.json: said, not guessed
  rows[1].update(wall_s_from_step="5000")  # the same, written by this version
  assert report._partial_wall(rows[1]) and not report._partial_wall(rows[0])
  # A finished member evaluated again without the record: no training in its wall time at all
  lost = [dict(r, wall_s="0.01", steps_done="16000", wall_s_from_step="16000") for r in rows]
  _write(tmp_path, lost)
  lines = report.aggregate(report.read_rows(str(tmp_path)))
  assert {line["wall s"] for line in lines} == {"– †"}


def test_notes_show_a_member_resumed_under_another_revision(tmp_path):
  for member in ("000", "001", "002", "003"):
    _provenance(tmp_path, member, "abc123")
  with open(tmp_path / "001" / "provenance.json") as f:
    first = json.load(f)
  first["resumed"] = [dict(first, git_revision="abc123", from_step=8000),   # evaluated again
                      dict(first, git_revision="def456", from_step=16000)]  # then other code
  with open(tmp_path / "001" / "provenance.json", "w") as f:
    json.dump(first, f)
  notes = report.provenance_notes(str(tmp_path), ROWS)
  line = next(n for n in notes if n.startswith("Git revision"))
  assert "the members differ" in line
  assert "`abc123` (3 members)" in line and "`abc123 → def456` (1 members)" in line
  command = next(n for n in notes if n.startswith("Command"))
  assert "differ" not in command and "→" not in command  # the same command every time


def test_a_partial_grid_keeps_every_label_on_a_drawn_panel():
  """Rows = methods, columns = datasets; (0, 0) and (1, 2) blank, column 2 has only (0, 2)."""
  from ebm_gan.runner import pictures
  labels = pictures.label_cells([(0, 1), (0, 2), (1, 0), (1, 1)], rows=2, cols=3)
  assert labels["title"] == {(1, 0), (0, 1), (0, 2)}  # column 0's title moves down a row
  assert labels["xlabel"] == {(1, 0), (1, 1), (0, 2)}  # column 2's x label stays on row 0
  assert labels["ylabel"] == {(0, 1), (1, 0)}  # method 0's name moves to its first panel
  assert labels["legend"] == (0, 1)
  assert pictures.label_cells([], 2, 2)["legend"] is None


def test_several_sweep_folders_are_tabled_together(tmp_path):
  """Parts of one benchmark run apart (``--only``): each folder's members, with its own
  override columns, in one table and one figure."""
  (tmp_path / "a").mkdir()
  (tmp_path / "b").mkdir()
  _write(tmp_path / "a", ROWS[:2])  # label A, seeds 0 and 1
  other = [{"member": "000", "entropy.name": "knn", "dataset": "8gaussians", "seed": "0",
            "status": "ok", "wall_s": "7", "modes_covered": "8", "high_quality": "0.95"}]
  _write(tmp_path / "b", other)  # another member named 000, in its own folder
  for folder in ("a/000", "b/000"):
    os.makedirs(tmp_path / folder)
    np.savez_compressed(tmp_path / folder / "samples.npz", samples=np.zeros((5, 2)),
                        data=np.ones((5, 2)), scale=2.0)
  with open(tmp_path / "b" / "000" / "provenance.json", "w") as f:
    json.dump({"git_revision": "abc", "argv": ["run.py"], "versions": {}}, f)
  from experiments import report as command
  stem = str(tmp_path / "out" / "bench")
  assert command.main([str(tmp_path / "a"), str(tmp_path / "b"), "--out", stem]) == 0
  text = open(stem + ".md").read()
  assert "| A " in text and "| entropy.name=knn " in text  # the second folder's method
  assert "| 24 ± 1.4 " in text and "| 8 ± 0 " in text
  assert "Members: 3 (3 ok); provenance read for 1." in text  # read from b/000, not a/000
  assert os.path.exists(stem + ".png")
  with open(stem + ".csv", newline="") as f:  # the union of both folders' columns
    rows = list(csv.DictReader(f))
  assert [(r["label"], r["entropy.name"], r["seed"]) for r in rows] == [
      ("A", "", "0"), ("A", "", "1"), ("", "knn", "0")]
  assert command.main([str(tmp_path / "a"), str(tmp_path / "none")]) == 2


def test_parts_share_one_command_and_are_listed(tmp_path):
  """Members run as parts (``--only``, each in its own --workdir) are one command, not a
  table mixing settings; the parts are named."""
  rows = [dict(r, member=f"{i:03d}") for i, r in enumerate(ROWS)]
  for i, (only, workdir) in enumerate([("label=A", "/w/part-0"), ("label=A", "/w/part-0"),
                                       ("label=A", "/w/part-0"), ("seed=0", "/w/part-1")]):
    _provenance(tmp_path, f"{i:03d}", "abc123", argv=(
        "/x/experiments/run.py", "--config", "b.py", "--only", only, f"--workdir={workdir}"))
  notes = report.provenance_notes(str(tmp_path), rows)
  assert "Command: `python -m experiments.run --config b.py`" in notes
  assert ("Parts, each run apart in its own --workdir: `--only label=A`; `--only seed=0`"
          in notes)
  _provenance(tmp_path, "003", "abc123", argv=("/x/experiments/run.py", "--config", "c.py"))
  notes = report.provenance_notes(str(tmp_path), rows)
  assert any(n.startswith("Command — **the members differ**") for n in notes)  # settings
  assert "Parts, each run apart in its own --workdir: `--only label=A`; the whole sweep" in notes


def test_the_command_refuses_an_unreadable_table_and_an_unwritable_out(tmp_path, capsys):
  """A sweep.csv that is not UTF-8, and --out in a folder that does not exist: exit 2 with one
  paragraph each (both were tracebacks)."""
  from experiments import report as command
  bad = tmp_path / "bad"
  bad.mkdir()
  (bad / "sweep.csv").write_bytes(b"member,seed\n\xff\xfe,1\n")
  assert command.main([str(bad)]) == 2
  err = capsys.readouterr().err
  assert "is not UTF-8 text (byte" in err and "Traceback" not in err
  good = tmp_path / "good"
  good.mkdir()
  _write(good, ROWS)
  assert command.main([str(good), "--out", "/dev/null/x"]) == 2
  assert "--out='/dev/null/x'" in capsys.readouterr().err


def test_a_one_method_report_figure_is_at_least_400_px_wide(tmp_path):
  """One method, one dataset: one panel, which alone made a 240 px figure."""
  _write(tmp_path, ROWS[:2])
  os.makedirs(tmp_path / "000")
  np.savez_compressed(tmp_path / "000" / "samples.npz", samples=np.zeros((5, 2)),
                      data=np.ones((5, 2)), scale=2.0)
  png = report.write(str(tmp_path), str(tmp_path / "bench"))[-1]
  from matplotlib import image
  height, width = image.imread(png).shape[:2]
  assert width >= 400 and height >= 300


def test_a_sweep_without_summaries_says_why_it_has_no_figure(tmp_path, capsys):
  """Every member unfinished (no summary, no samples): the table is written (0/N ok, exit 0)
  and one line on stderr names them and says no figure was drawn; a sweep.csv that lists no
  member is nothing to report (exit 2, nothing written)."""
  from experiments import report as command
  _write(tmp_path, [dict(r, status="running") for r in ROWS[:2]])
  assert command.main([str(tmp_path)]) == 0
  out, err = capsys.readouterr()
  assert out.split() == [str(tmp_path / f"report.{e}") for e in ("md", "csv")]
  (line,) = err.splitlines()
  assert line.startswith("note: no figure drawn")
  assert f"without a summary (unfinished or failed): {tmp_path / '000'}, {tmp_path / '001'}" in line
  empty = tmp_path / "empty"
  empty.mkdir()
  (empty / "sweep.csv").write_text("member,seed,status\n")
  assert command.main([str(empty)]) == 2
  assert "lists no member: nothing to report" in capsys.readouterr().err
  assert os.listdir(empty) == ["sweep.csv"]
