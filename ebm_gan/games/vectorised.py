"""Many optimisation runs of toy games as ONE compiled program.

A *group* is one (game, method) pair with R runs that differ by learning rate
and initial point. :func:`run_groups` traces every group's single-run step
under ``jax.vmap`` (over the R runs) inside one ``lax.scan`` over steps and
compiles the whole grid as a single ``jax.jit`` program. Each run carries
``diverged_at``: the first step t at which ``‖θ_t − θ*‖`` is NaN/Inf or above
``bound``; from then on the run is frozen (its recorded distance is NaN) while
the others go on.

:func:`run_loop` runs the same steps as a Python loop of jitted single-step
calls (the baseline of ``benchmarks/games.py``); both give the same numbers.
"""

from __future__ import annotations

import functools
from typing import Any, Mapping, NamedTuple, Sequence

import jax
import jax.numpy as jnp
import numpy as np

from ebm_gan import optim
from ebm_gan import schemes
from ebm_gan.errors import InvalidArgumentError, lookup
from ebm_gan.games import theory


class Method(NamedTuple):
  """An optimiser and the update scheme it runs in."""
  name: str
  optimizer: str
  scheme: str


# The named methods; any other is written 'optimizer@scheme'.
METHODS: dict[str, Method] = {m.name: m for m in (
    Method("gda", "gda", "simultaneous"),
    Method("alternating_gda", "gda", "alternating"),
    Method("ogda", "ogda", "simultaneous"),
    Method("optimistic_adam", "optimistic_adam", "simultaneous"),
    Method("extragradient", "gda", "extragradient"))}


def parse_method(name: str, key: str = "methods") -> Method:
  """A preset name (see :data:`METHODS`) or ``'optimizer@scheme'``, e.g. ``'ogda@alternating'``."""
  if isinstance(name, str) and "@" in name:
    opt, scheme = name.split("@", 1)
    for part, table, what in ((opt, optim.OPTIMIZERS, "optimizer"),
                              (scheme, schemes.SCHEMES, "update scheme")):
      if part not in table:
        raise InvalidArgumentError(f"{key}={name!r}: {part!r} is not a known {what}; "
                                   f"allowed: {', '.join(sorted(table))}.")
    return Method(name, opt, scheme)
  if name not in METHODS:
    raise InvalidArgumentError(
        f"{key}={name!r} is not a known method; allowed: {', '.join(sorted(METHODS))}, "
        f"or 'optimizer@scheme' with optimizer in {sorted(optim.OPTIMIZERS)} and scheme in "
        f"{sorted(schemes.SCHEMES)}.")
  return METHODS[name]


class RunState(NamedTuple):
  """The carry of one run: parameters, optimiser states, divergence step, step."""
  params: Any
  opt_states: Any
  diverged_at: jax.Array  # int32, -1 while the run is alive
  step: jax.Array  # int32


class Record(NamedTuple):
  """What one step records: the distance to θ* and the point in the plot plane."""
  distance: jax.Array
  point: jax.Array


class Group(NamedTuple):
  """R runs of one (game, method): learning rates [R] and initial params (leading axis R)."""
  game: Any
  method: Method
  learning_rates: np.ndarray
  inits: Any
  options: Mapping[str, Any] = {}


class GroupResult(NamedTuple):
  """distances [R, T+1] (index 0 = start; NaN after divergence), points [R, T+1, 2],
  diverged_at [R] (-1 = never), final params (leading axis R)."""
  distances: np.ndarray
  points: np.ndarray
  diverged_at: np.ndarray
  params: Any


def make_run(game, method: Method, *, options: Mapping[str, Any] | None = None,
             critic_lr_ratio: float = 1.0, critic_steps: int = 1, bound: float = 1e3):
  """The single-run functions of a (game, method) pair.

  One step is ``θ_{t+1} = scheme(θ_t)`` (see :mod:`ebm_gan.schemes`) with the
  players' transforms built from the run's learning rate η (critics:
  ``critic_lr_ratio · η``). With ``dist = ‖θ_{t+1} − θ*‖``, a live run whose
  ``dist`` is not finite or exceeds ``bound`` gets ``diverged_at = t+1`` and
  keeps θ_t from then on.

  Returns:
    ``init(params, lr) -> RunState`` and ``step(state, lr) -> (state, Record)``,
    pure functions of one run (vmap them for many).
  """
  factory = lookup(optim.OPTIMIZERS, method.optimizer, "method.optimizer", "optimizer")
  options = dict(options or {})
  players = list(game.players)
  key = jax.random.key(0)  # the toy games are deterministic

  def transforms(lr):
    lrs = theory.player_learning_rates(game, lr, critic_lr_ratio)
    return {p: factory(lrs[p], **options) for p in players}

  def init(params, lr):
    txs = transforms(lr)
    return RunState(params, {p: txs[p].init(params[p]) for p in players},
                    jnp.array(-1, jnp.int32), jnp.array(0, jnp.int32))

  def step(state, lr):
    update = schemes.make_update(game.directions_fn, transforms(lr), method.scheme,
                                 critics=game.critics, critic_steps=critic_steps)
    params, opt_states, _, _ = update(state.params, state.opt_states, key)
    dist = game.distance(params)
    alive = state.diverged_at < 0
    ok = jnp.isfinite(dist) & (dist <= bound)
    keep_new = alive & ok
    pick = lambda new, old: jax.tree.map(lambda n, o: jnp.where(keep_new, n, o), new, old)
    new_state = RunState(
        pick(params, state.params), pick(opt_states, state.opt_states),
        jnp.where(alive & ~ok, state.step + 1, state.diverged_at), state.step + 1)
    nan = jnp.array(jnp.nan, dist.dtype)
    record = Record(jnp.where(keep_new, dist, nan),
                    jnp.where(keep_new, game.plane(params), nan))
    return new_state, record

  return init, step


def _first_record(game, params):
  return Record(game.distance(params), game.plane(params))


def compile_groups(groups: Sequence[Group], num_steps: int, **run_kwargs):
  """One jitted program ``(lrs_list, inits_list) -> (final states, first records, records)``.

  Every group is vmapped over its runs; one ``lax.scan`` over ``num_steps``
  steps advances all groups together.
  """
  runs = [make_run(g.game, g.method, options=g.options, **run_kwargs) for g in groups]

  def program(lrs_list, inits_list):
    states = [jax.vmap(init)(inits, lrs)
              for (init, _), inits, lrs in zip(runs, inits_list, lrs_list)]
    first = [jax.vmap(functools.partial(_first_record, g.game))(inits)
             for g, inits in zip(groups, inits_list)]

    def body(carry, _):
      out = [jax.vmap(step)(s, lrs) for (_, step), s, lrs in zip(runs, carry, lrs_list)]
      return [o[0] for o in out], [o[1] for o in out]

    finals, records = jax.lax.scan(body, states, None, length=num_steps)
    return finals, first, records

  return jax.jit(program)


def _as_args(groups):
  lrs = [jnp.asarray(g.learning_rates, jnp.float32) for g in groups]
  return lrs, [g.inits for g in groups]


def _collect(finals, first, records):
  out = []
  for fin, f0, rec in zip(finals, first, records):
    dist = np.concatenate([np.asarray(f0.distance)[:, None], np.asarray(rec.distance).T], 1)
    pts = np.concatenate([np.asarray(f0.point)[:, None],
                          np.moveaxis(np.asarray(rec.point), 0, 1)], 1)
    out.append(GroupResult(dist, pts, np.asarray(fin.diverged_at), fin.params))
  return out


def run_groups(groups: Sequence[Group], num_steps: int, *, critic_lr_ratio: float = 1.0,
               critic_steps: int = 1, bound: float = 1e3) -> list[GroupResult]:
  """Runs every group for ``num_steps`` steps in one compiled program."""
  program = compile_groups(groups, num_steps, critic_lr_ratio=critic_lr_ratio,
                           critic_steps=critic_steps, bound=bound)
  return _collect(*program(*_as_args(groups)))


def make_loop(groups: Sequence[Group], *, critic_lr_ratio: float = 1.0, critic_steps: int = 1,
              bound: float = 1e3):
  """Per group, the jitted single-run ``(init, step, first_record)`` for :func:`run_loop`.

  Build it once and pass it to every :func:`run_loop` call so that compiled
  steps are reused (each ``make_run`` makes new closures, hence new jit caches).
  """
  out = []
  for g in groups:
    init, step = make_run(g.game, g.method, options=g.options, critic_lr_ratio=critic_lr_ratio,
                          critic_steps=critic_steps, bound=bound)
    out.append((jax.jit(init), jax.jit(step),
                jax.jit(functools.partial(_first_record, g.game))))
  return out


def run_loop(groups: Sequence[Group], num_steps: int, *, loop=None,
             **run_kwargs) -> list[GroupResult]:
  """The same runs as a Python loop of jitted single-step calls (one run at a time).

  Each call advances one run by one step; the per-step records of a run are
  fetched to the host once the run is over. ``loop`` is :func:`make_loop`'s
  output (built from ``run_kwargs`` when None).
  """
  loop = make_loop(groups, **run_kwargs) if loop is None else loop
  results = []
  for g, (init, step, first) in zip(groups, loop):
    finals, dist_all, pts_all = [], [], []
    for r, lr in enumerate(np.asarray(g.learning_rates, np.float32)):
      params = jax.tree.map(lambda v, r=r: v[r], g.inits)
      lr = jnp.float32(lr)
      state = init(params, lr)
      records = [first(params)]
      for _ in range(num_steps):
        state, rec = step(state, lr)
        records.append(rec)
      records = jax.device_get(records)
      finals.append(state)
      dist_all.append(np.array([rec.distance for rec in records]))
      pts_all.append(np.stack([rec.point for rec in records]))
    stacked = jax.tree.map(lambda *xs: jnp.stack(xs), *finals)
    results.append(GroupResult(np.stack(dist_all), np.stack(pts_all),
                               np.asarray(stacked.diverged_at), stacked.params))
  return results


def measured_rate(distances: np.ndarray, diverged_at: int = -1, floor: float = 1e-30,
                  min_steps: int = 10) -> float:
  """The asymptotic per-step factor of one run, measured.

  Uses the steps before divergence and before the distance first drops to
  ``floor`` (round-off); on the second half of them fits
  ``log d_t ≈ c + t log ρ`` by least squares and returns ρ (NaN when fewer
  than ``min_steps`` steps qualify).
  """
  d = np.asarray(distances, np.float64)
  stop = len(d) if diverged_at < 0 else min(int(diverged_at), len(d))
  d = d[:stop]
  bad = ~(np.isfinite(d) & (d > floor))
  if bad.any():
    d = d[:int(np.argmax(bad))]
  n = len(d)
  if n < min_steps:
    return float("nan")
  t = np.arange(n // 2, n)
  slope = np.polyfit(t, np.log(d[n // 2:]), 1)[0]
  return float(np.exp(slope))
