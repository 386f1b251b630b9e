"""Generators whose entropy and entropy gradient are known, and an estimator's error on them.

An estimator (docs/theory.md §4) is trusted only after its gradient has been measured against
the exact ∇_f H (docs/theory.md (4.18)–(4.19)). Two families of cases:

* :func:`linear_gaussian`: x = A z + b (+ σε), q_f = N(b, AAᵀ + σ²I), H in closed form (4.2);
* :func:`gaussian_mixture`: x = μ_c + L_c w (+ σε), the component c picked by the quantile of
  one latent coordinate, so q_f = Σ_c w_c N(μ_c, L_c L_cᵀ + σ²I) exactly; H by the midpoint
  rule on a grid fine enough to be exact to float precision (2-D only).

Either way ``case.entropy(variables, sigma)`` is a differentiable function of the generator's
variables, so ``jax.grad`` gives the exact ∇H that :func:`measure` compares an estimator with.
"""

from __future__ import annotations

import dataclasses
import math
import time
from typing import Any, Callable

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from ebm_gan.models.gaussian import AffineGenerator


@dataclasses.dataclass(frozen=True)
class Case:
  """A generator with an exact entropy.

  Attributes:
    name: a label for tables.
    generator: the flax module z[B, latent_dim] → x[B, d].
    variables: its variables ``{'params': ...}``.
    entropy: ``(variables, sigma) -> H`` of x = G(z) + σε, differentiable in the variables.
    scale: the case's smallest length scale (a component's std), for noise settings.
  """
  name: str
  generator: nn.Module
  variables: Any
  entropy: Callable[[Any, float], jax.Array]
  scale: float


def linear_gaussian(d: int, seed: int = 0) -> Case:
  """x = A z + b, A = I + 0.5 N(0, 1/d), b = 0.1·(0..d−1): H = ½ log det(2πe(AAᵀ + σ²I)) (4.2)."""
  a = jnp.eye(d) + 0.5 * jax.random.normal(jax.random.PRNGKey(seed), (d, d)) / math.sqrt(d)
  b = 0.1 * jnp.arange(d, dtype=jnp.float32)

  def entropy(variables, sigma=0.0):
    a = variables["params"]["A"]
    cov = a @ a.T + sigma ** 2 * jnp.eye(d)
    return 0.5 * jnp.linalg.slogdet(2 * math.pi * math.e * cov)[1]

  singular = np.linalg.svd(np.asarray(a), compute_uv=False)
  return Case(f"linear-Gaussian d={d}", AffineGenerator(d, d), {"params": {"A": a, "b": b}},
              entropy, float(singular.min()))


class MixtureGenerator(nn.Module):
  """x = μ_c + L_c (z̃_0, z_1): a Gaussian mixture with weights ``weights`` as a push-forward.

  z ~ N(0, I_2). With u = Φ(z_0) and W the cumulative weights, the component is the c with
  W_{c−1} ≤ u < W_c (so P(c) = w_c), and z̃_0 = Φ⁻¹((u − W_{c−1})/w_c) is again N(0, 1) and
  independent of c: each component is drawn exactly, and the map is one-to-one on each bin
  (injective overall where the components do not overlap). The parameters are the means
  μ[K, 2] and the lower-triangular factors L[K, 2, 2] (their upper parts are ignored).
  """
  weights: tuple[float, ...]
  means: tuple[tuple[float, float], ...]
  scales: tuple[float, ...]
  latent_dim: int = 2

  @nn.compact
  def __call__(self, z):
    means = self.param("means", lambda k: jnp.asarray(self.means, jnp.float32))
    tril = self.param("scale_tril", lambda k: jnp.asarray(
        [s * np.eye(2) for s in self.scales], jnp.float32))
    tril = jnp.tril(tril)
    w = jnp.asarray(self.weights, jnp.float32)
    upper = jnp.cumsum(w)
    u = jax.scipy.special.ndtr(z[:, 0])
    c = jnp.minimum(jnp.searchsorted(upper[:-1], u, side="right"), len(self.weights) - 1)
    within = jnp.clip((u - (upper[c] - w[c])) / w[c], 1e-6, 1.0 - 1e-6)
    z_c = jnp.stack([jax.scipy.special.ndtri(within), z[:, 1]], axis=1)
    return means[c] + jnp.einsum("bij,bj->bi", tril[c], z_c)


def mixture_log_density(x, weights, means, tril, sigma=0.0):
  """log Σ_c w_c N(x; μ_c, L_c L_cᵀ + σ²I) at x[N, 2]."""
  cov = tril @ jnp.swapaxes(tril, -1, -2) + sigma ** 2 * jnp.eye(2)
  prec = jnp.linalg.inv(cov)
  r = x[:, None, :] - means[None]
  quad = jnp.einsum("nki,kij,nkj->nk", r, prec, r)
  log_n = -0.5 * quad - 0.5 * jnp.linalg.slogdet(cov)[1] - math.log(2 * math.pi)
  return jax.nn.logsumexp(log_n + jnp.log(jnp.asarray(weights)), axis=1)


def _quadrature_points(means, scales, sigma_max: float = 1.0, cells_per_std: float = 4.0,
                       reach: float = 8.0):
  """Midpoint-rule nodes [N, 2] and areas [N] covering the mixture to ±``reach`` std (with up
  to ``sigma_max``·std of extra noise): one square per component when the squares are
  disjoint (the sharp, separated case), else one box around all of them; cells of
  std/``cells_per_std``, where the rule's relative error ≈ 2 exp(−2π² cells_per_std²) is far
  below float32's (docs/theory.md (9.3))."""
  means, scales = np.asarray(means, float), np.asarray(scales, float)
  half = reach * scales * math.sqrt(1.0 + sigma_max ** 2)
  apart = all(np.max(np.abs(means[i] - means[j])) >= half[i] + half[j]
              for i in range(len(means)) for j in range(i))
  if apart:
    n = int(2 * reach * cells_per_std)
    unit = (np.arange(n) + 0.5) / n * 2.0 - 1.0
    unit = np.stack(np.meshgrid(unit, unit, indexing="ij"), -1).reshape(-1, 2)
    pts = means[:, None, :] + half[:, None, None] * unit[None]
    areas = np.repeat((2.0 * half / n) ** 2, n * n)
    return pts.reshape(-1, 2), areas
  lo, hi = (means - half[:, None]).min(0), (means + half[:, None]).max(0)
  h = scales.min() / cells_per_std
  axes = [np.arange(a + h / 2, b, h) for a, b in zip(lo, hi)]
  pts = np.stack(np.meshgrid(*axes, indexing="ij"), -1).reshape(-1, 2)
  return pts, np.full(len(pts), h * h)


def _mixture_entropy(weights, points, areas):
  """``entropy(variables, sigma)`` = −Σ_g a_g q(x_g) log q(x_g) on fixed nodes (σ ≤ the
  components' std, which the nodes were placed for)."""
  points, areas = jnp.asarray(points, jnp.float32), jnp.asarray(areas, jnp.float32)

  def entropy(variables, sigma=0.0):
    p = variables["params"]
    log_q = mixture_log_density(points, weights, p["means"], jnp.tril(p["scale_tril"]), sigma)
    return -jnp.sum(areas * jnp.exp(log_q) * log_q)
  return entropy


def gaussian_mixture(weights, means, scales, name: str = "mixture") -> Case:
  """A 2-D Gaussian mixture generator (:class:`MixtureGenerator`) and its entropy by quadrature."""
  weights = tuple(float(w) for w in np.asarray(weights) / np.sum(weights))
  gen = MixtureGenerator(weights, tuple(map(tuple, np.asarray(means, float).tolist())),
                         tuple(float(s) for s in scales))
  variables = gen.init(jax.random.PRNGKey(0), jnp.zeros((1, 2)))
  points, areas = _quadrature_points(means, scales)
  return Case(name, gen, variables, _mixture_entropy(weights, points, areas), float(min(scales)))


def overlapping_mixture() -> Case:
  """Six components of unequal weights and widths (0.25–0.6), three of them overlapping."""
  means = [(-1.5, 0.0), (-0.9, 0.4), (0.0, -1.2), (1.2, 0.8), (1.6, 1.1), (0.3, 1.8)]
  return gaussian_mixture([0.1, 0.2, 0.25, 0.15, 0.2, 0.1], means,
                          [0.3, 0.45, 0.6, 0.25, 0.4, 0.35], "overlapping mixture (6)")


def grid_mixture(std: float = 0.05, seed: int = 0) -> Case:
  """25-gaussians' layout (modes on the 5 × 5 grid of spacing 2) with each mode's std drawn
  in [0.8, 1.2]·``std``, equal weights: the sharp, well-separated case the default trains on."""
  g = np.arange(-4.0, 5.0, 2.0)
  means = np.stack(np.meshgrid(g, g, indexing="ij"), -1).reshape(-1, 2)
  scales = std * np.random.default_rng(seed).uniform(0.8, 1.2, len(means))
  return gaussian_mixture(np.ones(len(means)), means, scales, f"25 modes, std ≈ {std}")


def _init(estimator, case: Case, key) -> dict:
  params = {"generator": case.variables}
  z = jnp.zeros((4, case.generator.latent_dim))
  params.update(estimator.init(key, case.generator, params, z))
  return params


def _player_losses(estimator, case, params, key, batch):
  """Σ of the estimator's extra players' own losses on one batch (the generator fixed)."""
  k_z, k_x, k_l = jax.random.split(key, 3)
  z = jax.random.normal(k_z, (batch, case.generator.latent_dim))
  x = estimator.sample(case.generator, params, z, k_x)
  losses = estimator.losses(case.generator, params, z, x, k_l)
  return sum(losses[p][0] for p in estimator.players)


def fit_players(estimator, case: Case, params: dict, steps: int, batch: int, lr: float = 1e-3,
                seed: int = 1) -> dict:
  """``steps`` Adam steps on the estimator's extra players (statistics network, proposal,
  score network), each on its own loss with the generator fixed; ``params`` with them fitted."""
  players = tuple(estimator.players)
  if not players or steps <= 0:
    return params
  tx = optax.adam(lr)

  @jax.jit
  def step(params, opt_state, key):
    def loss(own):
      return _player_losses(estimator, case, {**params, **own}, key, batch)
    own = {p: params[p] for p in players}
    updates, opt_state = tx.update(jax.grad(loss)(own), opt_state)
    return {**params, **optax.apply_updates(own, updates)}, opt_state

  opt_state = tx.init({p: params[p] for p in players})
  for i in range(steps):
    params, opt_state = step(params, opt_state, jax.random.fold_in(jax.random.PRNGKey(seed), i))
  return params


def estimate(estimator, case: Case, params: dict, key, batch: int):
  """``(Ĥ, ∇_generator Ĥ)`` on one batch through the estimator's own sample → entropy path."""
  def h(gen_vars):
    p = {**params, "generator": gen_vars}
    k_z, k_x, k_h = jax.random.split(key, 3)
    z = jax.random.normal(k_z, (batch, case.generator.latent_dim))
    x = estimator.sample(case.generator, p, z, k_x)
    return estimator.entropy(case.generator, p, z, x, k_h)[0]
  return jax.value_and_grad(h)(params["generator"])


def _flat(tree) -> np.ndarray:
  return np.concatenate([np.ravel(np.asarray(v, np.float64)) for v in jax.tree.leaves(tree)])


def _cosine(u, v) -> float:
  return float(u @ v / (np.linalg.norm(u) * np.linalg.norm(v)))


def measure(estimator, case: Case, batch: int = 256, repeats: int = 20, fit_steps: int = 3000,
            fit_lr: float = 1e-3, seed: int = 0) -> dict:
  """An estimator's value and gradient against the exact H and ∇H of ``case``.

  The extra players (if any) are fitted first (:func:`fit_players`), then ``repeats``
  independent batches give Ĥ and ∇Ĥ w.r.t. the generator's parameters (σ fixed; the true H is
  that of x = G(z) + σε for the estimator's σ, 0 for a deterministic generator).

  Returns:
    ``value`` (mean Ĥ), ``true`` (H), ``bias`` (value − true), ``value_sd`` (Ĥ's std over
    batches), ``cos_mean`` (cosine of the MEAN gradient with ∇H: the estimator's bias),
    ``cos_batch`` (mean cosine of one batch's gradient: what one training step sees),
    ``norm_ratio`` (‖mean ∇Ĥ‖ / ‖∇H‖), ``ms_per_step`` (one batch's Ĥ, ∇Ĥ and the extra
    players' gradients, after compiling).
  """
  sigma = float(getattr(estimator, "sigma", 0.0))
  params = _init(estimator, case, jax.random.PRNGKey(seed))
  params = fit_players(estimator, case, params, fit_steps, batch, fit_lr, seed + 1)
  exact = jax.grad(case.entropy)(case.variables, sigma)["params"]
  truth = float(case.entropy(case.variables, sigma))
  one = jax.jit(lambda p, k: estimate(estimator, case, p, k, batch))
  values, grads = [], []
  for r in range(repeats):
    value, grad = one(params, jax.random.PRNGKey(1000 + seed * repeats + r))
    values.append(float(value))
    grads.append(_flat(grad["params"]))
  true_grad = _flat(exact)
  mean_grad = np.mean(grads, axis=0)
  return {"value": float(np.mean(values)), "true": truth, "bias": float(np.mean(values)) - truth,
          "value_sd": float(np.std(values)), "cos_mean": _cosine(mean_grad, true_grad),
          "cos_batch": float(np.mean([_cosine(g, true_grad) for g in grads])),
          "norm_ratio": float(np.linalg.norm(mean_grad) / np.linalg.norm(true_grad)),
          "ms_per_step": _step_ms(estimator, case, params, batch)}


def _step_ms(estimator, case, params, batch, calls: int = 20) -> float:
  """Milliseconds of one jitted evaluation of Ĥ, ∇Ĥ and the extra players' gradients."""
  players = tuple(estimator.players)

  @jax.jit
  def step(params, key):
    out = estimate(estimator, case, params, key, batch)
    if players:
      own = {p: params[p] for p in players}
      out = out, jax.grad(lambda o: _player_losses(estimator, case, {**params, **o}, key, batch))(own)
    return out

  jax.block_until_ready(step(params, jax.random.PRNGKey(0)))
  start = time.perf_counter()
  for i in range(calls):
    jax.block_until_ready(step(params, jax.random.PRNGKey(i)))
  return 1e3 * (time.perf_counter() - start) / calls
