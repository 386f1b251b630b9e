"""The console: the sweep table's columns and the progress bar's losses."""

import io
import time

import numpy as np
import tqdm

from ebm_gan.runner import console


def test_sweep_table_keeps_varying_keys_status_and_results():
  members = [[("optimizer.name", "gda"), ("seed", 0)], [("optimizer.name", "gda"), ("seed", 1)]]
  rows = [{"member": f"00{i}_x", "optimizer.name": "gda", "seed": str(i), "status": "ok",
           "wall_s": 1.0, "compile_s": 3.0, "loss_energy": -1.0, "modes_covered": 20 + i}
          for i in range(2)]
  header = console.sweep_table(rows, members).splitlines()[0]
  cols = [c.strip() for c in header.strip("|").split("|")]
  assert cols == ["member", "seed", "status", "modes_covered", "wall_s"]


def test_postfix_shows_the_last_losses_and_a_groups_median():
  single = {"loss_energy": np.array([1.0, 2.0]), "l3": np.array([0.5, 0.25]),
            "grad_norm/energy": np.array([9.0, 9.0])}
  assert console.postfix(single) == {"energy": "2", "l3": "0.25"}
  group = {"loss_energy": np.array([[1.0, 2.0], [1.0, 4.0], [1.0, np.nan]])}
  assert console.postfix(group, alive=[True, True, False]) == {"energy": "3"}


def test_the_bar_shows_no_eta_until_it_has_timed_a_steady_chunk():
  """Before restart_clock the bar says 'timing…' and shows no remaining time; after it, its
  rate and ETA count only the steps and seconds since (2 s of 'compilation' excluded)."""
  out = io.StringIO()
  bar = tqdm.tqdm(total=1000, file=out, bar_format=console.WARMING_UP, mininterval=0)
  bar.start_t -= 2.0  # as if compiling took 2 s
  bar.update(10)
  assert "timing…" in out.getvalue() and "<" not in out.getvalue()
  console.restart_clock(bar)
  time.sleep(0.1)
  bar.update(100)
  line = out.getvalue().split("\r")[-1]
  assert "timing…" not in line and "<" in line, line
  since = bar.format_dict["n"] - bar.format_dict["initial"]
  assert since == 100 and bar.format_dict["elapsed"] < 1.0
  bar.close()
