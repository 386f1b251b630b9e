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
                     status; see ebm_gan.runner.evaluation, and for images
                     ebm_gan.runner.image_evaluation: MMD² to held-out images, mode counting)

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
import jax.numpy as jnp
import numpy as np

from ebm_gan import metrics as metrics_lib
from ebm_gan import parallel
from ebm_gan import sampling
from ebm_gan import train
from ebm_gan.entropy.knn import knn_entropy
from ebm_gan.runner import checkpoint
from ebm_gan.runner import config as config_lib
from ebm_gan.runner import console
from ebm_gan.runner import distributed
from ebm_gan.runner import evaluation
from ebm_gan.runner import image_evaluation
from ebm_gan.runner import loop
from ebm_gan.runner import pictures
from ebm_gan.runner import record
from ebm_gan.runner.registry import ConfigError

VMAP_KEYS = ("seed", "optimizer.lr", "optimizer.critic_lr")
# Host-side settings each member's Recorder reads from its own config: free to differ too.
HOST_KEYS = ("divergence_bound", "log_every", "eval_samples", "tensorboard_every",
             "evaluation.mcmc_steps", "evaluation.mcmc_step_size", "evaluation.mode_samples",
             "evaluation.entropy_samples",
             "evaluation.classifier_cache")
EVAL_STREAM = 2**31 - 1  # the key stream of evaluation samples and pictures

build = config_lib.build
CHOICES = config_lib.CHOICES  # named choices, for --help
ignored_keys = config_lib.ignored_keys


def group_key(exp) -> str:
  """Members with equal keys train as one vmapped program: equal but for VMAP/HOST_KEYS."""
  flat = record.flatten_config(exp.config)
  return json.dumps({k: v for k, v in sorted(flat.items())
                     if k not in VMAP_KEYS + HOST_KEYS}, default=str)


def critic_values(game, params, x):
  """U(x) of the game's critic (the energy, or the GAN discriminator's logit)."""
  if hasattr(game, "energy_fn"):
    return game.energy_fn(params)(x)
  return game.discriminator.apply(params["discriminator"], x)


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
    if c.evaluation.mcmc_steps > 0 and hasattr(game, "energy_fn"):
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
    ``data_entropy`` H(p) (ebm_gan.runner.evaluation)."""
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
               "diverged_at": recorder.diverged_at, **timings}
    if recorder.status == record.OK:
      summary.update(recorder.last)
    params = state.params if state.ema is None else state.ema
    samples, found = self.distribution_metrics(params)
    summary.update(found)
    if state.ema is not None:
      summary.update({f"raw_{k}": v for k, v in self.distribution_metrics(state.params)[1].items()})
    if self.mcmc is not None:
      summary.update(self._mcmc_metrics(params))
    if np.all(np.isfinite(samples)):
      np.savez_compressed(os.path.join(recorder.workdir, "samples.npz"), samples=samples,
                          data=self.data, scale=getattr(self.exp.dataset, "scale", 1.0))
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


def _data(exp):
  """``(arrays, sampler_of)``: what the compiled chunk takes as its data argument, and
  ``sampler_of(arrays) -> sample(key, n)`` built inside the traced function.

  An image dataset's training arrays are a jit ARGUMENT, not a closed-over constant (which
  compiles an MNIST-sized array into the program: BUILD.md, Datasets); a toy needs none.
  """
  ds = exp.dataset
  if config_lib.is_image(ds):
    return ds.arrays(), ds.sampler
  return None, lambda arrays: ds.sample


def _dispatch(exp) -> str:
  """'per_step' or 'scan': how a chunk's steps run (``dispatch``; 'auto': per_step for conv
  models on a CPU backend, where XLA runs convolutions inside a loop ~10x slower,
  jax-ml/jax#12868; BUILD.md, Benchmarks)."""
  how = exp.config.dispatch
  if how != "auto":
    return how
  conv = "conv" in (exp.config.model.energy, exp.config.model.generator)
  return "per_step" if conv and jax.default_backend() == "cpu" else "scan"


def _compiler(exp, build_fn, args, mapped: bool):
  """``compile_chunk(n, states)`` for ``build_fn(n, unroll) -> fn(*args, states)``: n steps in
  one compiled ``lax.scan``, or (:func:`_dispatch` 'per_step') one compiled step (a 1-step
  chunk unrolled: no loop) called n times from Python with the metrics concatenated; a
  run's chunks never change, so resume stays exact."""
  per_step = _dispatch(exp) == "per_step"
  compiled = {}

  def compile_n(n, states):
    if n not in compiled:
      fn = jax.jit(build_fn(n, per_step)).lower(*args, states).compile()
      compiled[n] = lambda s: fn(*args, s)
    return compiled[n]

  def compile_chunk(n, states):
    if not per_step:
      return compile_n(n, states)
    one = compile_n(1, states)

    def chunk(states):
      rows = []
      for _ in range(n):
        states, metrics = one(states)
        rows.append(metrics)
      return states, jax.tree.map(lambda *m: jnp.concatenate(m, axis=int(mapped)), *rows)
    return chunk
  return compile_chunk


def _single(exp) -> loop.Trainable:
  """One run: on one device, or data-parallel over ``exp.devices`` (ebm_gan.parallel)."""
  c, n_dev = exp.config, exp.devices
  arrays, sampler_of = _data(exp)
  axis = parallel.AXIS if n_dev > 1 else None
  step = train.make_train_step(exp.game, exp.tx, c.scheme, critic_steps=c.critic_steps,
                               axis_name=axis, ema_decay=c.optimizer.ema_decay,
                               penalty_schedule=exp.penalty_schedule)
  mesh = parallel.device_mesh(n_dev) if n_dev > 1 else None

  def init():  # one compiled program, not op by op
    state = jax.jit(lambda k, a: train.init_state(
        exp.game, exp.tx, k, sampler_of(a)(k, c.batch_size),
        ema=c.optimizer.ema_decay > 0))(jax.random.PRNGKey(c.seed), arrays)
    return state if mesh is None else jax.device_put(state, parallel.replicated(mesh))

  def build_chunk(n, unroll):
    def chunk(a, state):
      return train.make_chunk(step, n, sampler_of(a), c.batch_size // n_dev,
                              axis_name=axis, unroll=unroll)(state)
    if mesh is not None:  # every device draws its batch_size / devices samples
      chunk = parallel.data_parallel(chunk, mesh)
    return chunk

  return loop.Trainable(init, _compiler(exp, build_chunk, (arrays,), mapped=False))


def _group(exps) -> loop.Trainable:
  """K members vmapped; over several devices, members are spread on the mesh (K % devices
  == 0) or, when they cannot be, every member is data-parallel."""
  base = exps[0]
  c, game, n_dev = base.config, base.game, base.devices
  arrays, sampler_of = _data(base)
  spread = n_dev > 1 and len(exps) % n_dev == 0
  axis = parallel.AXIS if n_dev > 1 and not spread else None
  mesh = parallel.device_mesh(n_dev) if n_dev > 1 else None
  rates = {"lr": jnp.asarray([e.config.optimizer.lr for e in exps], jnp.float32),
           "critic_lr": jnp.asarray([e.config.optimizer.lr if e.config.optimizer.critic_lr is None
                                     else e.config.optimizer.critic_lr for e in exps],
                                    jnp.float32)}

  def optimizer(lr, critic_lr):  # constant schedules, so that the rates can be traced
    return config_lib.build_optimizer(c, game.players, lr=lambda count: lr,
                                      critic_lr=lambda count: critic_lr)

  def init():
    tx = optimizer(1.0, 1.0)  # the structure of the optimiser states
    keys = jnp.stack([jax.random.PRNGKey(e.config.seed) for e in exps])
    states = jax.jit(lambda a, ks: jax.vmap(
        lambda k: train.init_state(game, tx, k, sampler_of(a)(k, c.batch_size),
                                   ema=c.optimizer.ema_decay > 0))(ks))(arrays, keys)
    return states if mesh is None else jax.device_put(states, _group_sharding(mesh, spread))

  def build_chunk(n, unroll):
    def chunk(a, h, state):
      step = train.make_train_step(game, optimizer(h["lr"], h["critic_lr"]), c.scheme,
                                   critic_steps=c.critic_steps, axis_name=axis,
                                   ema_decay=c.optimizer.ema_decay,
                                   penalty_schedule=base.penalty_schedule)
      return train.make_chunk(step, n, sampler_of(a), c.batch_size // (1 if spread else n_dev),
                              axis_name=axis, unroll=unroll)(state)
    members = jax.vmap(chunk, in_axes=(None, 0, 0))
    if mesh is not None:
      members = parallel.data_parallel(members, mesh, sharded_args=2 if spread else 0,
                                       out_sharded=spread)
    return members

  return loop.Trainable(init, _compiler(base, build_chunk, (arrays, rates), mapped=True),
                        size=len(exps), mapped=True)


def _group_sharding(mesh, spread: bool):
  """Members split over the mesh (``spread``), or every member replicated on every device."""
  if spread:
    return jax.sharding.NamedSharding(mesh, jax.sharding.PartitionSpec(parallel.AXIS))
  return parallel.replicated(mesh)


def run_group(exps, workdirs, ckpt_dir: str, progress: bool = True) -> list[dict]:
  """Trains the members ``exps`` (one, or a vmapped group); returns their summaries.

  Args:
    exps: built experiments (:func:`build`); more than one must share a :func:`group_key`.
    workdirs: each member's run folder.
    ckpt_dir: the folder whose ``checkpoints/`` holds the (stacked) state.
    progress: show a progress bar.
  """
  trainable = _group(exps) if len(exps) > 1 else _single(exps[0])
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
