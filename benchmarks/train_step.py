"""Train-step throughput inside ``lax.scan``: the library vs a hand-written JAX step of the same game.

Both train the same EBM-GAN (MLP energy and generator, R1 penalty 0.1, Adam
β=(0.5, 0.9) from plain optax) on 25-gaussians, N steps per dispatch, for each
entropy estimator written by hand here (none, knn, mi) and each scheme
(simultaneous; alternating with ``--critic-steps`` critic sub-steps):

  library       eg.make_chunk(eg.make_train_step(game, tx, scheme)), metrics stacked per step
  hand-written  one jax.value_and_grad per player's loss, optax by hand, the losses as
                metrics, the same networks (their flax ``apply``), no library code

The two are timed in interleaved A/B repetitions in one process (the machine
is shared: a ratio from the same run is what to read); each row also gives
XLA's cost analysis of the compiled chunk (FLOPs per step) and its count of
dot ops, the library's over the hand-written one.

  python benchmarks/train_step.py [--hidden 256] [--batch 256] [--chunk 100] [--repeats 5] [--quick]

``--curve`` prints instead the host-side curve of the default experiment
(experiments/configs/default.py, built as the runner builds it): steps/s against
steps per dispatch, each chunk's state fed back and its metrics fetched to the host
once per chunk as ``ebm_gan/runner/loop.py`` does, the chunk compiled without and
with its state donated (``donate_argnums=0``), the lengths timed in interleaved
repetitions over the same number of steps:

  python benchmarks/train_step.py --curve [--lengths 1,10,50,200,1000] [--total 1000]
"""

import argparse
import os
import re
import statistics
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import jax
import jax.numpy as jnp
import optax
from jax.scipy.special import digamma

import ebm_gan as eg

ESTIMATORS = ("none", "knn", "mi", "noisy", "flow")
SIGMA, PROPOSALS = 0.1, 16  # the noisy generator's σ and its importance proposals (local)
SCHEMES = ("simultaneous", "alternating")
PENALTY = 0.1


def build(hidden, estimator):
  """The benchmarked game: 3-layer MLPs of ``hidden`` units, R1 penalty, one estimator."""
  entropy = {"none": eg.entropy.NoEntropy(), "knn": eg.entropy.KNN(1),
             "mi": eg.entropy.MutualInformation(hidden=(hidden,) * 2),
             "noisy": eg.entropy.NoisyGenerator(SIGMA, proposal="local", num_samples=PROPOSALS),
             "flow": eg.entropy.Flow()}[estimator]
  generator = (eg.models.CouplingFlow(2, 4, (hidden,) * 2) if estimator == "flow"
               else eg.models.MLPGenerator(2, 2, (hidden,) * 3))
  game = eg.EBMGame(eg.models.MLPEnergy((hidden,) * 3), generator,
                    entropy=entropy, penalty=eg.objectives.score_penalty(PENALTY))
  return game, eg.toy.get("25gaussians")


def _knn_entropy(x):
  """Kozachenko–Leonenko with k = 1 in 2-D, by hand (the neighbour from stopped distances)."""
  n = x.shape[0]
  xs = jax.lax.stop_gradient(x)
  sq = jnp.sum(xs * xs, 1)
  dist2 = jnp.where(jnp.eye(n, dtype=bool), jnp.inf, sq[:, None] + sq[None, :] - 2 * xs @ xs.T)
  nb = jnp.argmin(dist2, axis=1)
  log_eps = 0.5 * jnp.log(jnp.sum((x - x[nb]) ** 2, 1) + 1e-12)
  return digamma(float(n)) - digamma(1.0) + jnp.log(jnp.pi) + 2 * jnp.mean(log_eps)


def _jsd_bound(t_apply, psi, x, z):
  """MEG's Jensen–Shannon bound: joint pairs (x_i, z_i) against (x_i, z_{i+1})."""
  t_joint, t_marg = t_apply(psi, x, z), t_apply(psi, x, jnp.roll(z, 1, axis=0))
  return jnp.mean(-jax.nn.softplus(-t_joint)) - jnp.mean(jax.nn.softplus(t_marg))


def _noisy_entropy(g_apply, f, x, z, key):
  """Self-normalised importance sampling of ∇_x log q_f(x) with local proposals z + σε_j:
  the value −mean log q̂(x), the gradient that of −mean(sg(ŝ)·x)."""
  f, xs = jax.lax.stop_gradient((f, x))
  eta = jax.random.normal(key, (PROPOSALS,) + z.shape)
  zs = z + SIGMA * eta
  g = g_apply(f, zs.reshape(-1, z.shape[1])).reshape(zs.shape[:2] + (-1,))
  d = xs.shape[1]
  log_w = (-0.5 * jnp.sum(zs ** 2, -1) - 0.5 * jnp.sum((xs - g) ** 2, -1) / SIGMA ** 2
           + 0.5 * jnp.sum(eta ** 2, -1) - d * jnp.log(SIGMA) - 0.5 * d * jnp.log(2 * jnp.pi))
  w = jax.nn.softmax(log_w, axis=0)
  score = jnp.sum(w[..., None] * (g - xs), axis=0) / SIGMA ** 2
  value = -jnp.mean(jax.nn.logsumexp(log_w, axis=0) - jnp.log(float(PROPOSALS)))
  surrogate = -jnp.mean(jnp.sum(score * x, -1))
  return value + surrogate - jax.lax.stop_gradient(surrogate)


def hand_written_chunk(game, data, tx, scheme, critic_steps, batch, n, estimator):
  """The same mathematics without the library: one ``value_and_grad`` per player's loss."""
  e_apply, g_apply = game.energy.apply, game.generator.apply
  t_apply = game.entropy.network.apply if estimator == "mi" else None
  critics = ("energy", "statistics") if estimator == "mi" else ("energy",)

  def energy_loss(m, x, x_gen):
    g = jax.grad(lambda y: jnp.sum(e_apply(m, y)))(x)
    return (-(jnp.mean(e_apply(m, x)) - jnp.mean(e_apply(m, x_gen)))
            + 0.5 * PENALTY * jnp.mean(jnp.sum(g * g, 1)))

  def sample(f, z, key):
    if estimator == "flow":
      return g_apply(f, z, method="forward_and_log_det")
    x = g_apply(f, z)
    if estimator == "noisy":
      x = x + SIGMA * jax.random.normal(key, x.shape)
    return x, None

  def generator_loss(f, params, z, key):
    x_gen, log_det = sample(f, z, key)
    h = 0.0
    if estimator == "knn":
      h = _knn_entropy(x_gen)
    elif estimator == "mi":
      h = _jsd_bound(t_apply, params["statistics"], x_gen, z)
    elif estimator == "noisy":
      h = _noisy_entropy(g_apply, f, x_gen, z, jax.random.fold_in(key, 1))
    elif estimator == "flow":
      h = jnp.log(2 * jnp.pi * jnp.e) + jnp.mean(log_det)
    return -(jnp.mean(e_apply(params["energy"], x_gen)) + h)

  def grads(params, x, key, players):
    z = jax.random.normal(key, (batch, 2))
    x_gen = jax.lax.stop_gradient(sample(params["generator"], z, key)[0])
    out = {}
    if "energy" in players:
      out["energy"] = jax.value_and_grad(energy_loss)(params["energy"], x, x_gen)
    if "statistics" in players:
      out["statistics"] = jax.value_and_grad(
          lambda s: -_jsd_bound(t_apply, s, x_gen, z))(params["statistics"])
    if "generator" in players:
      out["generator"] = jax.value_and_grad(generator_loss)(params["generator"], params, z, key)
    return out

  def apply(params, opt, out):
    params, opt = dict(params), dict(opt)
    for p, (_, g) in out.items():
      u, opt[p] = tx.update(g, opt[p], params[p])
      params[p] = optax.apply_updates(params[p], u)
    return params, opt

  groups = ([tuple(game.players)] if scheme == "simultaneous"
            else [critics] * critic_steps + [("generator",)])

  def step(carry, _):
    params, opt, key, t = carry
    k = jax.random.fold_in(key, t)
    x = data.sample(jax.random.fold_in(k, 99), batch)
    losses = {}
    for i, group in enumerate(groups):
      out = grads(params, x, jax.random.fold_in(k, i), group)
      losses.update({p: v for p, (v, _) in out.items() if p not in losses})
      params, opt = apply(params, opt, out)
    return (params, opt, key, t + 1), losses

  def chunk(params, opt, key):
    (params, opt, _, _), losses = jax.lax.scan(step, (params, opt, key, 0), None, length=n)
    return params, opt, losses
  return chunk


def compile_with_costs(fn, *args):
  """(compiled, FLOPs of one call by XLA's cost analysis, number of dot ops in its HLO)."""
  compiled = jax.jit(fn).lower(*args).compile()
  cost = compiled.cost_analysis()
  cost = cost[0] if isinstance(cost, (list, tuple)) else cost
  return compiled, cost.get("flops", float("nan")), len(re.findall(r"\bdot\(", compiled.as_text()))


def interleaved(calls, repeats):
  """Median seconds per call of each compiled call, timed in alternating repetitions."""
  times = [[] for _ in calls]
  for fn, args in calls:
    jax.block_until_ready(fn(*args))
  for _ in range(repeats):
    for i, (fn, args) in enumerate(calls):
      t = time.perf_counter()
      jax.block_until_ready(fn(*args))
      times[i].append(time.perf_counter() - t)
  return [statistics.median(t) for t in times]


def compare(estimator, scheme, a, key):
  """One row: library and hand-written chunks of the same game, timed A/B."""
  game, data = build(a.hidden, estimator)
  tx = optax.adam(1e-4, b1=0.5, b2=0.9)
  state = eg.init_state(game, tx, key, data.sample(key, a.batch))
  critic_steps = a.critic_steps if scheme == "alternating" else 1
  step = eg.make_train_step(game, tx, scheme, critic_steps=critic_steps)
  lib, lib_flops, lib_dots = compile_with_costs(
      eg.make_chunk(step, a.chunk, data.sample, a.batch), state)
  hand_fn = hand_written_chunk(game, data, tx, scheme, critic_steps, a.batch, a.chunk, estimator)
  hand_args = (state.params, state.opt_states, key)
  hand, hand_flops, hand_dots = compile_with_costs(hand_fn, *hand_args)
  t_lib, t_hand = interleaved([(lib, (state,)), (hand, hand_args)], a.repeats)
  return (estimator, scheme, a.chunk / t_lib, a.chunk / t_hand, t_hand / t_lib,
          lib_flops / hand_flops, f"{lib_dots}/{hand_dots}")


def _host_loop(compiled, state, total, n):
  """Seconds for ``total`` steps in chunks of n: state fed back, metrics fetched per chunk."""
  t = time.perf_counter()
  for _ in range(total // n):
    state, metrics = compiled(state)
    jax.device_get(metrics)
  jax.block_until_ready(state)
  return time.perf_counter() - t, state


def dispatch_curve(lengths, total, repeats):
  """Rows (n, steps/s plain, steps/s donated): the default experiment's runner-like loop."""
  from benchmarks import experiment  # here: tests/lib/test_compiled_step.py imports this file
  exp = experiment.default_experiment()
  runs = {}
  for n in lengths:
    for donate in (False, True):
      compiled, state = experiment.default_chunk(exp, n, donate=donate)
      _, state = _host_loop(compiled, state, n, n)  # warm-up
      runs[n, donate] = [compiled, state, []]
  for _ in range(repeats):
    for key, run in runs.items():
      seconds, run[1] = _host_loop(run[0], run[1], max(total, key[0]), key[0])
      run[2].append(max(total, key[0]) / seconds)
  return [(n, statistics.median(runs[n, False][2]), statistics.median(runs[n, True][2]))
          for n in lengths]


def print_curve(a):
  print(f"jax {jax.__version__}, the default experiment (256x3 MLPs, MI, R1, optimistic Adam, "
        f"batch 256), {a.total} steps per timing, {a.repeats} interleaved repeats, "
        f"load average {os.getloadavg()[0]:.2f}")
  print("| steps per dispatch | steps/s | steps/s, state donated | donated/plain |")
  print("|---|---|---|---|")
  for n, plain, donated in dispatch_curve([int(x) for x in a.lengths.split(",")], a.total,
                                          a.repeats):
    print(f"| {n} | {plain:.1f} | {donated:.1f} | {donated / plain:.2f} |", flush=True)
  print(f"load average after: {os.getloadavg()[0]:.2f}")


def main():
  p = argparse.ArgumentParser()
  p.add_argument("--hidden", type=int, default=256)
  p.add_argument("--batch", type=int, default=256)
  p.add_argument("--chunk", type=int, default=100)
  p.add_argument("--critic-steps", type=int, default=5)
  p.add_argument("--repeats", type=int, default=5)
  p.add_argument("--estimators", default=",".join(ESTIMATORS))
  p.add_argument("--schemes", default=",".join(SCHEMES))
  p.add_argument("--quick", action="store_true", help="width 64, chunks of 20, 3 repeats (< 1 min)"
                 "; with --curve: lengths 1,10,50 over 50 steps")
  p.add_argument("--curve", action="store_true", help="the host-side steps/s vs steps-per-dispatch "
                 "curve of the default experiment instead of the table")
  p.add_argument("--lengths", default="1,10,50,200,1000")
  p.add_argument("--total", type=int, default=1000, help="steps per timing of the curve")
  a = p.parse_args()
  if a.curve:
    if a.quick:
      a.lengths, a.total, a.repeats = "1,10,50", 50, 3
    return print_curve(a)
  if a.quick:
    a.hidden, a.chunk, a.repeats = 64, 20, 3
  key = jax.random.PRNGKey(0)
  print(f"jax {jax.__version__}, {jax.devices()[0].platform}, hidden {a.hidden}x3, batch {a.batch}, "
        f"{a.chunk} steps per dispatch, alternating: {a.critic_steps} critic steps, "
        f"load average {os.getloadavg()[0]:.2f}")
  print("| estimator | scheme | library steps/s | hand-written steps/s | ratio | FLOPs ratio | dots lib/hand |")
  print("|---|---|---|---|---|---|---|")
  for estimator in a.estimators.split(","):
    for scheme in a.schemes.split(","):
      e, s, lib, hand, ratio, flops, dots = compare(estimator, scheme, a, key)
      print(f"| {e} | {s} | {lib:.1f} | {hand:.1f} | {ratio:.2f} | {flops:.3f} | {dots} |", flush=True)
  print(f"load average after: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
  main()
