"""The metrics log on resume: damaged lines are set aside and reported, never silently cut."""

import json
import os

from ebm_gan.runner import record


def _write(folder, lines):
  with open(os.path.join(folder, record.METRICS), "w") as f:
    f.writelines(lines)


def test_a_corrupt_row_is_set_aside_and_every_other_row_is_kept(tmp_path, capsys):
  """Row 40 of 100 is garbage and the last line was torn by a kill; resuming from step 100
  keeps the 99 intact rows (it used to keep 39), moves the two damaged lines with their
  numbers to metrics.damaged.jsonl, says so, and counts them for the summary."""
  lines = [json.dumps({"step": s, "l1": s / 10}) + "\n" for s in range(1, 101)]
  lines[39] = "{not json at all\n"
  _write(tmp_path, lines + ['{"step": 101, "l1": 1'])
  log = record.MetricsLog(str(tmp_path), resume_step=100, tensorboard_every=0)
  log.close()
  rows = record.read_metrics(str(tmp_path))
  assert [r["step"] for r in rows] == [s for s in range(1, 101) if s != 40]
  aside = [json.loads(l) for l in open(tmp_path / record.METRICS_DAMAGED)]
  assert aside == [{"line": 40, "text": "{not json at all"},
                   {"line": 101, "text": '{"step": 101, "l1": 1'}]
  err = capsys.readouterr().err
  assert "2 damaged line(s) (line 40, 101)" in err and "99 intact rows up to step 100" in err
  assert log.recovery == {"metrics_lines_set_aside": 2, "metrics_rows_kept": 99}


def test_rows_after_the_checkpoint_are_dropped_quietly_and_rows_without_a_step_set_aside(
    tmp_path, capsys):
  """Rows newer than the checkpoint are written again by the resumed run (resume is exact):
  they are dropped without a warning. A JSON line that is not a row with an integer step is
  damage."""
  lines = [json.dumps({"step": s}) + "\n" for s in range(1, 21)]
  _write(tmp_path, lines[:10] + ['["a list"]\n', '{"step": true}\n'] + lines[10:])
  log = record.MetricsLog(str(tmp_path), resume_step=15, tensorboard_every=0)
  log.write([{"step": 16}])
  log.close()
  assert [r["step"] for r in record.read_metrics(str(tmp_path))] == list(range(1, 17))
  assert len(open(tmp_path / record.METRICS_DAMAGED).readlines()) == 2
  assert "2 damaged line(s) (line 11, 12)" in capsys.readouterr().err


def test_an_intact_log_is_resumed_without_a_word(tmp_path, capsys):
  _write(tmp_path, [json.dumps({"step": s}) + "\n" for s in range(1, 11)])
  log = record.MetricsLog(str(tmp_path), resume_step=10, tensorboard_every=0)
  log.close()
  assert len(record.read_metrics(str(tmp_path))) == 10 and log.recovery == {}
  assert not os.path.exists(tmp_path / record.METRICS_DAMAGED)
  assert capsys.readouterr().err == ""
