"""The 'ebm_gan' program: train a game on a 2-D toy or an image dataset and write a run folder.

Writes into ``workdir``:
  config.json        the resolved config
  provenance.json    package versions, git revision, command line
  metrics.jsonl      one JSON object per logged step (losses, L1/L3, entropy, norms, diverged)
  tensorboard/       the same scalars as TensorBoard event files
  checkpoints/       orbax checkpoints of the TrainState (every ``checkpoint_every`` steps)
  pictures/          periodic samples-over-energy and energy-landscape pictures
  samples.png        generator samples over the energy model's log-density (and the data);
                     for images a grid of 64 samples, and data.png 64 training images
  samples.npz        the final generator samples, data and picture box (for reports)
  curves.png         training curves
  summary.json/.md   final metrics (modes covered, high-quality %, MMD², KLs, losses, timings,
                     status; see ebm_gan.runner.programs.ebm_gan.evaluation, and for images
                     ebm_gan.runner.programs.ebm_gan.image_evaluation: MMD² to held-out images, mode counting)

A single run and a vectorised sweep group (members that differ only in
:data:`VMAP_KEYS` and :data:`HOST_KEYS`) are both trained by
:func:`ebm_gan.runner.loop.train`; a group stacks its members' TrainStates and
``jax.vmap``-s the chunk over them, with the learning rates as traced values
(each member's optimiser is built inside the mapped function with the constant
schedule ``lambda count: lr_k``, so its optimiser state holds a schedule count,
unlike a lone run's). A workdir that holds a checkpoint is resumed from its
latest one; since all randomness is a function of (state.key, state.step), the
run finishes with the same bits as one never interrupted (on CPU).
"""

from __future__ import annotations

import functools
import json
import os

import jax
import numpy as np

from ebm_gan import metrics as metrics_lib
from ebm_gan import sampling
from ebm_gan.entropy.knn import knn_entropy
from ebm_gan.runner import checkpoint
from ebm_gan.runner.programs.ebm_gan import config as config_lib
from ebm_gan.runner import console
from ebm_gan.runner import distributed
from ebm_gan.runner.programs.ebm_gan import evaluation
from ebm_gan.runner.programs.ebm_gan import fields
from ebm_gan.runner.programs.ebm_gan import image_evaluation
from ebm_gan.runner import loop
from ebm_gan.runner import pictures
from ebm_gan.runner import record
from ebm_gan.runner import tables
from ebm_gan.runner.programs.ebm_gan import trainables
from ebm_gan.runner.registry import ConfigError
from ebm_gan.runner.status import Status

VMAP_KEYS = ("seed", "optimizer.lr", "optimizer.critic_lr")
# Host-side settings each member's Recorder reads from its own config: free to differ too.
HOST_KEYS = ("divergence_bound", "log_every", "eval_samples", "tensorboard_every",
             "evaluation.mcmc_steps", "evaluation.mcmc_step_size", "evaluation.mode_samples",
             "evaluation.entropy_samples",
             "evaluation.classifier_cache")
EVAL_STREAM = 2**31 - 1  # the key stream of evaluation samples and pictures

build = config_lib.build
CHOICES = config_lib.CHOICES  # named choices, for --help
DESCRIPTIONS = fields.DESCRIPTIONS  # what each field does, for --help
ignored_keys = config_lib.ignored_keys


def group_key(exp) -> str:
  """Members with equal keys train as one vmapped program: equal but for VMAP/HOST_KEYS."""
  flat = record.flatten_config(exp.config)
  return json.dumps({k: v for k, v in sorted(flat.items())
                     if k not in VMAP_KEYS + HOST_KEYS}, default=str)


def critic_values(game, params, x):
  """U(x) of the game's critic (the energy, or the GAN discriminator's logit)."""
  return game.critic_fn(params)(x)


@functools.lru_cache(maxsize=None)
def _jitted(game, n: int):
  """``(sample(params, key) -> x[n], critic(params, x) -> U)`` jitted once per game and size,
  so the members of a sweep group share one compilation."""
  return (jax.jit(lambda p, k: game.sample(p, k, n)[0]),
          jax.jit(lambda p, x: critic_values(game, p, x)))


@functools.lru_cache(maxsize=None)
def _jitted_mcmc(game, n: int, num_steps: int, step_size: float):
  """``mcmc(params, key) -> (x[n], acceptance)``: q_m sampled by latent MALA (ebm_gan.sampling)."""
  def mcmc(params, key):
    generator = lambda z: game.generator.apply(params["generator"], z)
    return sampling.sample_energy_model(game.energy_fn(params), generator, game.latent_dim,
                                        key, n, num_steps, step_size)
  return jax.jit(mcmc)


class Evaluator:
  """Jitted evaluation sampling and pictures of one experiment's parameters, compiled for
  ``game`` (None: ``exp.game``): a vmapped group passes the first member's, which it trained
  with, so that its members share one compilation (games compare by identity)."""

  def __init__(self, exp, game=None):
    self.exp = exp
    c, game = exp.config, exp.game if game is None else game
    key = jax.random.fold_in(jax.random.PRNGKey(c.seed), EVAL_STREAM)
    sample, self.critic = _jitted(game, c.eval_samples)
    self.sample = lambda p: sample(p, key)
    self.mcmc = None
    if c.evaluation.mcmc_steps > 0 and game.has_energy:
      mcmc = _jitted_mcmc(game, c.eval_samples, c.evaluation.mcmc_steps,
                          float(c.evaluation.mcmc_step_size))
      self.mcmc = lambda p: mcmc(p, key)
    self.data = np.asarray(exp.dataset.sample(jax.random.PRNGKey(c.seed), 1000))
    self.image = config_lib.is_image(exp.dataset)
    self.entropy_sample = None
    n_entropy = c.evaluation.entropy_samples
    if n_entropy and not self.image:
      sample_many = _jitted(game, n_entropy)[0]
      self.entropy_sample = lambda p: sample_many(p, jax.random.fold_in(key, 1))
    self.density_metrics = (image_evaluation.HeldOutMMD(exp) if self.image
                            else evaluation.DensityMetrics(exp))
    self.modes = None
    if image_evaluation.is_stacked(exp.dataset):
      self.modes = image_evaluation.ModeCounter(
          exp, _jitted(game, image_evaluation.MODE_BATCH)[0])

  def draw(self, params, step: int, path: str, title: str | None = None) -> None:
    """Saves the samples-over-energy picture of ``params`` at ``path``."""
    pictures.save_samples(path, np.asarray(self.sample(params)),
                          lambda x: self.critic(params, x),
                          getattr(self.exp.dataset, "scale", 1.0), data=self.data,
                          title=title or f"{self.exp.config.dataset}, step {step}")

  def distribution_metrics(self, params, samples=None) -> tuple[np.ndarray, dict]:
    """Generator samples of ``params`` and their metrics (modes, MMD², KLs, the energy's
    KL(p‖q_m)); given ``samples`` (e.g. MCMC ones), the metrics of those samples alone."""
    own = samples is None
    samples = np.asarray(self.sample(params) if own else samples)
    dataset, out = self.exp.dataset, {}
    if hasattr(dataset, "modes"):
      out.update(metrics_lib.mode_metrics(samples, dataset.modes, dataset.std))
    energy = (lambda x: self.critic(params, x)) if own else None
    out.update(self.density_metrics(samples, energy))
    if own and self.entropy_sample is not None:
      out.update(self._entropies(params))
    if self.modes is not None and np.all(np.isfinite(samples)):
      out.update(self.modes(params))
    return samples, out

  def _entropies(self, params) -> dict:
    """``generator_entropy`` (Kozachenko–Leonenko on entropy_samples samples) and
    ``data_entropy`` H(p) (ebm_gan.runner.programs.ebm_gan.evaluation)."""
    many = np.asarray(self.entropy_sample(params))
    if not np.all(np.isfinite(many)):
      return {}
    return {"generator_entropy": knn_entropy(many),
            "data_entropy": self.density_metrics.data_entropy()}

  def finish(self, state, recorder: record.Recorder, timings: dict) -> dict:
    """Evaluates the final ``state``, draws the final pictures and curves, writes the summary.

    With a moving average of the parameters (``optimizer.ema_decay`` > 0) the
    summary's metrics are those of the average, and ``raw_<metric>`` those of the
    last iterate.
    """
    recorder.close()
    summary = {"status": recorder.status, "steps_done": int(state.step),
               "diverged_at": recorder.diverged_at, **timings, **recorder.log.recovery}
    if recorder.status == Status.OK:
      summary.update(recorder.last)
    params = state.params if state.ema is None else state.ema
    samples, found = self.distribution_metrics(params)
    summary.update(found)
    if state.ema is not None:
      summary.update({f"raw_{k}": v for k, v in self.distribution_metrics(state.params)[1].items()})
    if self.mcmc is not None:
      summary.update(self._mcmc_metrics(params))
    if np.all(np.isfinite(samples)):
      scale = getattr(self.exp.dataset, "scale", 1.0)
      tables.save_atomically(os.path.join(recorder.workdir, "samples.npz"), lambda p: (
          np.savez_compressed(p, samples=samples, data=self.data, scale=scale)))
      self._final_picture(recorder.workdir, params, samples, summary, recorder.status)
    plot_curves(recorder.workdir)
    pictures.evolution(os.path.join(recorder.workdir, "pictures"),
                       os.path.join(recorder.workdir, "evolution.png"))
    record.write_summary(recorder.workdir, summary)
    return summary

  def _mcmc_metrics(self, params) -> dict:
    """``mcmc_<metric>``: the metrics of q_m sampled by latent MALA from the generator."""
    x, acceptance = self.mcmc(params)
    found = self.distribution_metrics(params, x)[1]
    return {"mcmc_acceptance": float(acceptance), **{f"mcmc_{k}": v for k, v in found.items()}}

  def _final_picture(self, workdir, params, samples, summary, status) -> None:
    if self.image:
      _image_pictures(workdir, samples, self.data, summary, self.exp.config.dataset, status)
      return
    pictures.samples_over_energy(
        os.path.join(workdir, "samples.png"), samples,
        lambda x: self.critic(params, x), self.exp.dataset.scale, data=self.data,
        title=pictures.run_title(self.exp.config.dataset, summary, status))


def _image_pictures(workdir, samples, data, summary, dataset: str, status) -> None:
  """``samples.png``: 64 generator samples as a grid (with the mode count when there is one);
  ``data.png``: 64 training images, for comparison."""
  quality = (f"{summary['modes_covered']}/{summary['num_modes']} modes, "
             f"KL {summary['mode_kl']:.2f}" if "mode_kl" in summary else status)
  pictures.image_grid(os.path.join(workdir, "samples.png"), samples[:64],
                      title=f"{dataset}, step {summary['steps_done']}: {quality}")
  pictures.image_grid(os.path.join(workdir, "data.png"), data[:64], title=f"{dataset}: data")


def plot_curves(workdir: str) -> None:
  """``curves.png``: every metric of ``metrics.jsonl`` against the step."""
  rows = record.read_metrics(workdir)
  if not rows:
    return
  names = [k for k in rows[0] if k not in ("step", "diverged")]
  steps = np.array([r["step"] for r in rows])
  pictures.training_curves(os.path.join(workdir, "curves.png"), steps,
                           {k: np.array([r.get(k, np.nan) for r in rows], np.float64)
                            for k in names})


def run_group(exps, workdirs, ckpt_dir: str, progress: bool = True) -> list[dict]:
  """Trains the members ``exps`` (one, or a vmapped group); returns their summaries.

  Args:
    exps: built experiments (:func:`build`); more than one must share a :func:`group_key`.
    workdirs: each member's run folder.
    ckpt_dir: the folder whose ``checkpoints/`` holds the (stacked) state.
    progress: show a progress bar.
  """
  trainable = trainables.group(exps) if len(exps) > 1 else trainables.single(exps[0])
  for d in list(workdirs) + [ckpt_dir]:
    os.makedirs(d, exist_ok=True)
  base = exps[0].config
  ckpt = checkpoint.Checkpoints(ckpt_dir, base.checkpoint_every, base.max_to_keep)
  if ckpt.latest_step() is not None:
    for e, d in zip(exps, workdirs):
      record.check_resumable(d, e.config)
  with distributed.private_folders(workdirs) as workdirs:  # only process 0 writes the run folder
    return _train_and_finish(trainable, exps, workdirs, ckpt, progress)


def _train_and_finish(trainable, exps, workdirs, ckpt, progress) -> list[dict]:
  """Restores or initialises, trains and evaluates; each member's records go to its workdir."""
  base, ckpt_dir = exps[0].config, os.path.dirname(ckpt.directory)
  evaluators = [Evaluator(e, exps[0].game) for e in exps]

  def recorders_for(start):
    if start > base.steps:
      raise ConfigError(f"--workdir={ckpt_dir!r} is already at step {start}, beyond "
                        f"steps={base.steps}; raise steps or pass another --workdir.")
    out = []
    for e, d, ev in zip(exps, workdirs, evaluators):
      record.write_provenance(d, e.config, from_step=start)
      out.append(record.Recorder(e.config, d, resume_step=start, draw=ev.draw))
    return out

  console.phase(f"initialising {len(exps)} member(s)" if len(exps) > 1 else "initialising",
                progress)
  states, diverged_at, start, recorders = loop.restore(trainable, ckpt, recorders_for)
  states, timings = loop.train(trainable, states, diverged_at, start, recorders, ckpt, base,
                               progress, desc=f"{len(exps)} runs" if trainable.mapped else None)
  summaries = []
  for i, (ev, r) in enumerate(zip(evaluators, recorders)):
    state = trainable.member(states, i)
    console.phase(f"evaluating and drawing {workdirs[i]}", progress)
    summaries.append(ev.finish(state, r, dict(timings, log_s=r.log_s, picture_s=r.picture_s)))
  return summaries


def run(exp, workdir: str, progress: bool = True) -> dict:
  """Trains one built experiment in ``workdir`` (resuming its checkpoint); returns the summary.

  The summary's ``status`` is 'ok' or 'diverged' (NaN/Inf or a loss above
  ``divergence_bound``); a diverged run keeps its metrics up to the
  divergence, its last good checkpoint, and still writes its summary.
  """
  return run_group([exp], [workdir], workdir, progress)[0]
