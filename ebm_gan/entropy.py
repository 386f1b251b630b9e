"""Estimators of the generator's entropy H(q_f) = −E_{q_f}[log q_f] (MATH.md §4).

The generator player maximises E_{q_f}[U_m] + H(q_f); for a push-forward
x = G_f(z) the entropy is intractable and one of these estimators stands in:

* ``flow`` — :class:`Flow`: the exact H of an invertible generator;
* ``noisy`` — :class:`~ebm_gan.entropy_noisy.NoisyGenerator`: x = G_f(z) + σε,
  ∇_f H through samples of the posterior z | x (VERA / PresGAN);
* ``mi`` — :class:`~ebm_gan.entropy_mi.MutualInformation`: a statistics network's
  lower bound of I(x; z) (MEG), a third player;
* ``knn`` — :class:`KNN`: the Kozachenko–Leonenko estimate;
* ``none`` — :class:`NoEntropy`: 0 (L1 alone).

The protocol (duck-typed; see :class:`EntropyEstimator`). Every method gets
the game's full parameter dict ``params`` (player → pytree) as the game's
current view: in player i's loss the other players' entries are under
``stop_gradient`` (:func:`ebm_gan.game.joint_directions`).

* ``players``: names of the extra players the estimator brings (``'posterior'``
  for a learned proposal, ``'statistics'`` for MEG's network); ``()`` for most.
* ``init(key, generator, params, z) -> dict``: entries to *update* the game's
  parameter dict with: the extra players' parameters, and optionally a
  replacement ``'generator'`` entry carrying extra leaves the generator player
  owns (a learned noise scale lives in its ``'noise'`` collection, so the
  generator maximises L2 over σ too; flax ignores unused collections).
* ``sample(generator, params, z, key) -> x``: samples of q_f given latents
  z[B, latent_dim] (``G_f(z)``; a noise-injected generator adds σε here).
* ``entropy(generator, params, z, x, key) -> (h, metrics)``: with x from
  ``sample``, a scalar whose value estimates H(q_f) and whose gradient w.r.t.
  the generator's parameters (through x and directly) is ∇_f H, or for ``mi``
  the gradient of the bound that stands in for it.
* ``losses(generator, params, z, x, key) -> {player: (loss, metrics)}``: each
  extra player's loss (minimised) on the same (x, z).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, Protocol

import jax
import jax.numpy as jnp
from jax.scipy.special import digamma

from ebm_gan import flows
from ebm_gan.entropy_mi import MutualInformation
from ebm_gan.entropy_noisy import NoisyGenerator
from ebm_gan.registry import ConfigError, Registry, check_positive

ENTROPY_ESTIMATORS = Registry("entropy estimator")
# The estimators with extra machinery (players, samplers) live in their own modules.
ENTROPY_ESTIMATORS.register("noisy", NoisyGenerator)
ENTROPY_ESTIMATORS.register("mi", MutualInformation)


class EntropyEstimator(Protocol):
  """What :class:`ebm_gan.game.EBMGame` needs from an entropy estimator."""
  players: tuple[str, ...]

  def init(self, key, generator, params, z) -> dict[str, Any]: ...
  def sample(self, generator, params, z, key) -> jax.Array: ...
  def entropy(self, generator, params, z, x, key) -> tuple[jax.Array, dict]: ...
  def losses(self, generator, params, z, x, key) -> dict[str, tuple[jax.Array, dict]]: ...


class _PushForward:
  """Shared defaults: x = G_f(z), no extra players."""
  players: tuple[str, ...] = ()

  def init(self, key, generator, params, z):
    return {}

  def sample(self, generator, params, z, key):
    return generator.apply(params["generator"], z)

  def losses(self, generator, params, z, x, key):
    return {}


@ENTROPY_ESTIMATORS.register("none")
@dataclasses.dataclass(frozen=True)
class NoEntropy(_PushForward):
  """Ĥ = 0: the game is L1 alone (a Wasserstein-like critic, no max-entropy term)."""

  def entropy(self, generator, params, z, x, key):
    return jnp.zeros((), x.dtype), {}


def unit_ball_log_volume(d: int) -> float:
  """log V_d = (d/2) log π − log Γ(d/2 + 1), the log-volume of the unit d-ball."""
  return 0.5 * d * math.log(math.pi) - math.lgamma(0.5 * d + 1.0)


def kozachenko_leonenko(x: jax.Array, k: int = 1, eps: float = 1e-12) -> jax.Array:
  """The Kozachenko–Leonenko k-nearest-neighbour entropy estimate of samples x[N, d].

  .. math::  Ĥ = ψ(N) − ψ(k) + \\log V_d + \\frac{d}{N} Σ_i \\log ε_{i,k}

  with ε_{i,k} the distance from x_i to its k-th nearest neighbour among the
  others and V_d the volume of the unit d-ball. Consistent as N → ∞ and
  differentiable in the samples (so in the generator's parameters).

  The neighbours are found on the Gram-matrix distances |x_i|² + |x_j|² − 2x_i·x_j
  (one matmul), but ε is recomputed as |x_i − x_j| for the chosen pair: the Gram
  form cancels catastrophically for close pairs in float32, and since ∂ log ε/∂x
  is 1/ε, that rounding would otherwise dominate the gradient.
  """
  n = x.shape[0]
  x = x.reshape(n, -1)
  d = x.shape[1]
  xs = jax.lax.stop_gradient(x)
  sq = jnp.sum(xs * xs, axis=1)
  dist2 = jnp.where(jnp.eye(n, dtype=bool), jnp.inf, sq[:, None] + sq[None, :] - 2.0 * xs @ xs.T)
  neighbour = jax.lax.top_k(-dist2, k)[1][:, k - 1]
  log_eps = 0.5 * jnp.log(jnp.sum((x - x[neighbour]) ** 2, axis=1) + eps)
  return (digamma(float(n)) - digamma(float(k)) + unit_ball_log_volume(d)
          + d * jnp.mean(log_eps))


@ENTROPY_ESTIMATORS.register("knn")
@dataclasses.dataclass(frozen=True)
class KNN(_PushForward):
  """Kozachenko–Leonenko estimate of H(q_f) on the batch of generated samples.

  Attributes:
    k: which neighbour (k ≥ 1; larger k lowers variance, raises bias).
  """
  k: int = 1

  def __post_init__(self):
    check_positive(self.k, "entropy.knn.k", integer=True)

  def entropy(self, generator, params, z, x, key):
    return kozachenko_leonenko(x, self.k), {}


@ENTROPY_ESTIMATORS.register("flow")
@dataclasses.dataclass(frozen=True)
class Flow(_PushForward):
  """The exact entropy of an invertible generator (change of variables).

  .. math::  Ĥ = ½ d \\log(2πe) + \\frac{1}{B} Σ_i \\log |\\det ∂G_f/∂z(z_i)|

  since H(q_f) = H(N(0, I_d)) + E_z[log |det ∂G_f/∂z|]. Its gradient is the
  exact ∇_f H in expectation; for the affine generator x = A z + b (log-det
  constant in z) Ĥ = ½ log det(2πe A Aᵀ) with no Monte Carlo error at all.
  Needs :class:`ebm_gan.flows.CouplingFlow` or a square
  :class:`ebm_gan.models.AffineGenerator` (see :func:`ebm_gan.flows.forward_and_log_det`).
  """

  def entropy(self, generator, params, z, x, key):
    _, log_det = flows.forward_and_log_det(generator, params["generator"], z)
    d = z.shape[-1]
    return 0.5 * d * math.log(2 * math.pi * math.e) + jnp.mean(log_det), {}


def _hashable(value):
  # Config lists (ml_collections turns tuples into lists on override) → tuples.
  return tuple(_hashable(v) for v in value) if isinstance(value, (list, tuple)) else value


def from_config(cfg) -> EntropyEstimator:
  """Builds the estimator ``cfg.name`` from its own settings block ``cfg[cfg.name]``.

  E.g. ``name='knn', knn=dict(k=3)`` gives ``KNN(k=3)``; ``name='noisy',
  noisy=dict(sigma=0.1)`` gives ``NoisyGenerator(sigma=0.1)``; a missing block
  means defaults. Raises ConfigError for an unknown name or setting, or a bad value.
  """
  name = cfg.get("name")
  cls = ENTROPY_ESTIMATORS.get(name, key="entropy.name")
  settings = dict(cfg.get(name) or {})
  allowed = {f.name for f in dataclasses.fields(cls)}
  unknown = sorted(set(settings) - allowed)
  if unknown:
    raise ConfigError(f"entropy.{name}.{unknown[0]} is not a setting of the {name!r} "
                      f"estimator; allowed: {', '.join(sorted(allowed)) or 'none'}.")
  return cls(**{k: _hashable(v) for k, v in settings.items()})

