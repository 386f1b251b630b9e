"""What a run folder records: metrics (JSON lines + TensorBoard), provenance, summaries.

* :class:`Recorder` is one member's host-side bookkeeping inside the training
  loop: it writes the metrics rows of each chunk, spots the first diverging
  step, and draws the periodic pictures through a program-given function; its
  :class:`AcceptanceWatch` warns once when the negative phase's MALA stops moving.

* :class:`~ebm_gan.runner.metrics_log.MetricsLog` (imported here) appends one JSON object
  per logged step to ``metrics.jsonl`` and mirrors the scalars to TensorBoard.
* :func:`write_provenance` saves the resolved config, the package versions,
  the git revision and the command line: those of the launch that trained from step 0,
  and of every later one (resumes, re-evaluations) in its ``resumed`` list.
* :func:`write_summary` saves the final table; :func:`check_resumable` refuses
  to mix two runs in one folder.
"""

from __future__ import annotations

import importlib.metadata
import json
import os
import platform
import subprocess
import sys
import time
from typing import Iterable

import jax
import numpy as np

from ebm_gan.runner import tables
from ebm_gan.runner.metrics_log import METRICS, METRICS_DAMAGED, MetricsLog, read_metrics  # noqa: F401
from ebm_gan.runner.registry import ConfigError
from ebm_gan.runner.status import Status

SUMMARY_JSON, SUMMARY_MD = "summary.json", "summary.md"
PROVENANCE = "provenance.json"
PREVIOUS_JSON, PREVIOUS_MD = "summary.previous.json", "summary.previous.md"
PACKAGES = ("jax", "jaxlib", "flax", "optax", "orbax-checkpoint", "ml_collections", "numpy",
            "tensorboardX", "matplotlib", "ebm-gan")
_REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def git_revision(repo: str = _REPO) -> str:
  """``HEAD``'s commit of the repository holding the package (+'-dirty'), or 'unknown'."""
  try:
    rev = subprocess.run(["git", "-C", repo, "rev-parse", "HEAD"], capture_output=True,
                         text=True, timeout=10, check=True).stdout.strip()
    dirty = subprocess.run(["git", "-C", repo, "status", "--porcelain", "--untracked-files=no"],
                           capture_output=True, text=True, timeout=10).stdout.strip()
    return rev + ("-dirty" if dirty else "")
  except (OSError, subprocess.SubprocessError):
    return "unknown"


def package_versions(names: Iterable[str] = PACKAGES) -> dict:
  """Installed versions of ``names`` (None for a package that is not installed)."""
  out = {"python": platform.python_version()}
  for name in names:
    try:
      out[name] = importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
      out[name] = None
  return out


def device_description() -> str:
  """The accelerators a launch ran on, e.g. ``'1 × NVIDIA H100 80GB HBM3'`` or ``'4 × cpu'``,
  with JAX's default matmul precision where it is set (``JAX_DEFAULT_MATMUL_PRECISION``)."""
  text = f"{jax.device_count()} × {jax.devices()[0].device_kind}"
  precision = jax.config.jax_default_matmul_precision
  return text + (f", matmul precision {precision}" if precision else "")


def write_provenance(workdir: str, config, argv: Iterable[str] | None = None,
                     from_step: int = 0) -> None:
  """Saves ``config.json`` (the resolved config) and ``provenance.json`` in ``workdir``.

  ``provenance.json`` names the launch that trained from step 0 (package versions, git
  revision, command, platform, devices); each later launch of the run (a resume from
  ``from_step`` > 0, or a finished run evaluated again) is appended to its ``resumed`` list,
  so that the code that trained the first steps is never forgotten.
  """
  with open(os.path.join(workdir, "config.json"), "w") as f:
    f.write(config.to_json_best_effort(indent=2, sort_keys=True))
  info = {"from_step": from_step, "versions": package_versions(),
          "git_revision": git_revision(), "argv": list(sys.argv if argv is None else argv),
          "platform": platform.platform(), "devices": device_description()}
  path = os.path.join(workdir, PROVENANCE)
  earlier = read_json_object(path) if from_step > 0 else None
  if earlier is not None:
    earlier.setdefault("from_step", 0)
    info = dict(earlier, resumed=list(earlier.get("resumed", [])) + [info])
  tables.write_text_atomically(path, json.dumps(info, indent=2))


def read_provenance(workdir: str) -> dict:
  """``<workdir>/provenance.json`` ({} when absent or unreadable)."""
  return read_json_object(os.path.join(workdir, PROVENANCE)) or {}


def training_wall(workdir: str, step: int) -> tuple[int, float] | None:
  """``(wall_s_from_step, wall_s)`` of the summary in ``workdir`` when it ended at ``step``.

  A finished run evaluated again reads its training time here when its ``wall_time.json``
  lacks that step (a run folder from before that record). An older summary without
  ``wall_s_from_step`` counted from its ``resumed_from``.
  """
  found = read_json_object(os.path.join(workdir, SUMMARY_JSON))
  try:
    if found["steps_done"] != step:
      return None
    return int(found.get("wall_s_from_step", found.get("resumed_from", 0))), float(found["wall_s"])
  except (TypeError, KeyError, ValueError):
    return None


def read_json_object(path: str) -> dict | None:
  """The JSON object in ``path``; None when it is absent, unreadable or not an object."""
  try:
    with open(path) as f:
      found = json.load(f)
  except (OSError, ValueError):
    return None
  return found if isinstance(found, dict) else None


def flat_scalars(summary: dict) -> dict:
  """The scalar entries of a summary (no lists or dicts), numpy scalars as Python numbers."""
  out = {}
  for k, v in summary.items():
    if isinstance(v, (list, dict, tuple)):
      continue
    out[k] = v.item() if isinstance(v, np.generic) else v
  return out


def _status_of(path: str) -> str | None:
  return (read_json_object(path) or {}).get("status")


def write_summary(workdir: str, summary: dict) -> None:
  """Saves ``summary.json`` and ``summary.md`` (the table printed at the end), atomically.

  A good summary is never replaced silently by a worse one: when the folder's
  summary says 'ok' and the new one does not (a resumed run that diverged), the
  old pair is kept as ``summary.previous.json``/``.md`` and a warning says so.
  """
  clean = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in summary.items()}
  path_json, path_md = os.path.join(workdir, SUMMARY_JSON), os.path.join(workdir, SUMMARY_MD)
  if clean.get("status") != Status.OK and _status_of(path_json) == Status.OK:
    for path, kept in ((path_json, PREVIOUS_JSON), (path_md, PREVIOUS_MD)):
      if os.path.exists(path):
        os.replace(path, os.path.join(workdir, kept))
    print(f"warning: this run ended '{clean.get('status')}'; the earlier 'ok' summary of "
          f"{workdir} is kept as {PREVIOUS_JSON} (and {PREVIOUS_MD}).", file=sys.stderr)
  tables.write_text_atomically(path_json, json.dumps(clean, indent=2, default=str))
  tables.write_text_atomically(path_md, tables.summary_table(flat_scalars(clean)) + "\n")


# Fields that may change between a run and its resumption (they do not change the trajectory).
RESUMABLE_CHANGES = ("parallel.coordinator", "parallel.process_id", "steps", "checkpoint_every",
                     "max_to_keep", "picture_every", "tensorboard_every", "eval_samples",
                     "divergence_bound", "log_every", "evaluation.mcmc_steps",
                     "evaluation.mcmc_step_size", "evaluation.entropy_samples")

# Fields added after run folders existed, with the value that keeps the earlier behaviour: at
# that value they are left out of the run's fingerprint, and a config.json without them (an
# earlier run's) reads as having them at that value, so earlier runs resume and re-evaluate.
ADDED_FIELDS = {"model.critic_conv_width": None, "model.generator_conv_width": None,
                "model.generator_normalisation": "none"}


def flatten_config(config) -> dict:
  """``{'a.b': value}`` for every field of a ConfigDict (lists as tuples), as saved in JSON."""
  return _flatten(json.loads(config.to_json_best_effort()))


def _flatten(d, prefix=""):
  out = {}
  for k, v in d.items():
    if isinstance(v, dict):
      out.update(_flatten(v, f"{prefix}{k}."))
    else:
      out[prefix + k] = tuple(v) if isinstance(v, list) else v
  return out


def check_resumable(workdir: str, config) -> None:
  """ConfigError if ``workdir`` holds a run whose config differs in a field that matters."""
  path = os.path.join(workdir, "config.json")
  if not os.path.exists(path):
    return
  try:
    with open(path) as f:
      old = _flatten(json.load(f))
  except (OSError, ValueError) as e:
    raise ConfigError(f"--workdir={workdir!r} holds a checkpoint but its config.json cannot be "
                      f"read ({e}); pass another --workdir.") from None
  new = flatten_config(config)
  old.update({k: v for k, v in ADDED_FIELDS.items() if k in new and k not in old})
  decaying = [k for k in ("optimizer.schedule", "penalty.schedule")
              if old.get(k, "constant") != "constant"
              and not (k == "penalty.schedule" and old.get("penalty.name") == "none")]
  if decaying and old.get("steps") != new["steps"]:
    what = {"optimizer.schedule": "learning rates", "penalty.schedule": "penalty weight"}
    raise ConfigError(f"--workdir={workdir!r} holds a run whose "
                      f"{' and '.join(what[k] for k in decaying)} "
                      f"{'decay' if 'optimizer.schedule' in decaying else 'decays'} over "
                      f"steps={old.get('steps')} ("
                      f"{', '.join(f'{k}={old[k]!r}' for k in decaying)}); resuming it with "
                      f"steps={new['steps']} would change them mid-run. Keep steps, or pass "
                      "another --workdir.")
  diff = sorted(k for k in set(old) | set(new)
                if old.get(k) != new.get(k) and k not in RESUMABLE_CHANGES)
  if diff:
    shown = ", ".join(f"{k}: {old.get(k)!r} -> {new.get(k)!r}" for k in diff[:4])
    raise ConfigError(f"--workdir={workdir!r} holds a checkpoint of a run with another config "
                      f"({shown}); resuming it would mix two runs. Pass another --workdir, or "
                      f"change only {', '.join(RESUMABLE_CHANGES)}.")


def first_bad_step(chunk_metrics: dict, bound: float) -> int | None:
  """Index of the first step whose metrics are non-finite or whose losses exceed ``bound``."""
  bad = None
  for name, values in chunk_metrics.items():
    v = np.asarray(values, np.float64)
    flags = ~np.isfinite(v)
    if name.startswith("loss_") or name in ("l1", "l3"):
      flags |= np.abs(v) > bound
    idx = np.flatnonzero(flags)
    if idx.size and (bad is None or idx[0] < bad):
      bad = int(idx[0])
  return bad


def _is_summary_metric(name: str) -> bool:
  return name.startswith("loss_") or name in ("l1", "l3", "entropy", "entropy_lower_bound",
                                              "mi_bound")


# The negative phase's MALA acceptance below this over a window of steps: its chain is stuck.
MIN_ACCEPTANCE, ACCEPTANCE_WINDOW = 0.01, 50


class AcceptanceWatch:
  """Warns once on stderr when the negative phase's MALA acceptance (``negative_acceptance``)
  stays below :data:`MIN_ACCEPTANCE` over a window of :data:`ACCEPTANCE_WINDOW` steps (the
  whole run if shorter), naming ``negative_phase.step_size``."""

  def __init__(self, config, workdir: str, start: int):
    self.step_size, self.workdir = config.negative_phase.step_size, workdir
    self.window = max(1, min(ACCEPTANCE_WINDOW, config.steps - start))
    self.start, self.total, self.count, self.warned = start, 0.0, 0, False

  def update(self, values) -> None:
    """Adds the acceptance rates of the next steps (one per step)."""
    if self.warned:
      return
    values = np.asarray(values, np.float64)
    self.total, self.count = self.total + float(values.sum()), self.count + values.size
    if self.count < self.window:
      return
    rate = self.total / self.count
    if rate < MIN_ACCEPTANCE:
      print(f"warning: the negative phase's MALA accepted {rate:.1%} of its moves over steps "
            f"{self.start + 1}-{self.start + self.count} of {self.workdir}: with "
            f"negative_phase.step_size={self.step_size:g} its chain does not move, so L1's "
            "negatives are the generator's samples unchanged. Use a smaller "
            "negative_phase.step_size (an acceptance of about 0.5-0.9 keeps the chain moving).",
            file=sys.stderr, flush=True)
      self.warned = True
    self.start, self.total, self.count = self.start + self.count, 0.0, 0


class Recorder:
  """One run's host-side bookkeeping in the training loop: metrics rows, divergence, pictures.

  Args:
    config: the run's config (``divergence_bound``, ``log_every``, ``tensorboard_every``).
    workdir: the run folder.
    resume_step: the checkpoint step the run starts from (0 for a fresh run).
    draw: ``draw(params, step, path)`` saves a picture of ``params`` (None: no pictures).
  """

  def __init__(self, config, workdir: str, resume_step: int = 0, draw=None):
    self.config, self.workdir, self.draw = config, workdir, draw
    self.log = MetricsLog(workdir, resume_step, config.tensorboard_every)
    self.status, self.diverged_at, self.last = Status.OK, None, {}
    if resume_step:  # the last metrics before the checkpoint, for the summary
      rows = read_metrics(workdir)
      if rows:
        self.last = {k: v for k, v in rows[-1].items() if _is_summary_metric(k)}
    self.log_s = self.picture_s = 0.0
    self.acceptance = None  # an AcceptanceWatch once the chunks log negative_acceptance

  def record(self, done: int, chunk_metrics: dict) -> int | None:
    """Logs a chunk that started at step ``done``; returns the index of a bad step or None."""
    t = time.perf_counter()
    bad = first_bad_step(chunk_metrics, self.config.divergence_bound)
    if bad is not None:
      self.status, self.diverged_at = Status.DIVERGED, done + bad + 1
    n = len(next(iter(chunk_metrics.values())))
    rows = []
    for i in range(n if bad is None else bad + 1):
      step = done + i + 1
      if step % self.config.log_every and i != bad:
        continue
      row = {"step": step, **{k: v[i] for k, v in chunk_metrics.items()}}
      row["diverged"] = bad is not None and i == bad
      rows.append(row)
    self.log.write(rows)
    if "negative_acceptance" in chunk_metrics:
      if self.acceptance is None:
        self.acceptance = AcceptanceWatch(self.config, self.workdir, done)
      self.acceptance.update(chunk_metrics["negative_acceptance"][:n if bad is None else bad])
    if bad is None:
      self.last = {k: float(v[-1]) for k, v in chunk_metrics.items() if _is_summary_metric(k)}
    self.log_s += time.perf_counter() - t
    return bad

  def picture(self, params, step: int, name: str | None = None) -> None:
    """Saves ``pictures/step_<step>.png`` (or ``name`` in the run folder) for ``params``."""
    if self.draw is None:
      return
    t = time.perf_counter()
    if name is None:
      os.makedirs(os.path.join(self.workdir, "pictures"), exist_ok=True)
      name = os.path.join("pictures", f"step_{step:07d}.png")
    self.draw(params, step, os.path.join(self.workdir, name))
    self.picture_s += time.perf_counter() - t

  def close(self) -> None:
    """Flushes and closes the metrics files."""
    self.log.close()
