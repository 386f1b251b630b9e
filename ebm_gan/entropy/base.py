"""Estimators of the generator's entropy H(q_f) = −E_{q_f}[log q_f] (docs/theory.md §4).

The generator player maximises E_{q_f}[U_m] + H(q_f); for a push-forward
x = G_f(z) the entropy is intractable and one of these estimators stands in:

* ``flow`` — :class:`~ebm_gan.entropy.exact.Flow`: the exact H of an invertible generator;
* ``noisy`` — :class:`~ebm_gan.entropy.noisy.NoisyGenerator`: x = G_f(z) + σε,
  ∇_f H through samples of the posterior z | x (VERA / PresGAN);
* ``mi`` — :class:`~ebm_gan.entropy.mutual_info.MutualInformation`: a statistics network's
  lower bound of I(x; z) (MEG), a third player;
* ``knn`` — :class:`~ebm_gan.entropy.knn.KNN`: the Kozachenko–Leonenko estimate;
* ``none`` — :class:`NoEntropy`: 0 (L1 alone).

This module holds the protocol (duck-typed; :class:`EntropyEstimator`) and ``NoEntropy``. Every method gets
the game's full parameter dict ``params`` (player → pytree) as the game's
current view: in player i's loss the other players' entries are under
``stop_gradient`` (:func:`ebm_gan.game.joint_directions`).

* ``value_name``: what ``h``'s value is, and the metric it is logged as: ``'entropy'``
  for an estimate of H(q_f) (consistent, or exact), ``'entropy_lower_bound'`` for a bound,
  ``'mi_bound'`` for MEG's statistics-network bound (at σ = 0 not a quantity of H at all:
  docs/theory.md (4.10)); ``None`` when there is no term.
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
* optional ``sample_and_entropy(generator, params, z, key) -> (x, (h, metrics))``:
  ``sample`` and ``entropy`` from one forward pass, for an estimator whose Ĥ reads
  only the generator's parameters (a flow's log-determinant comes with its sample);
  the game then evaluates the generator once per step for both.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Protocol

import jax
import jax.numpy as jnp


class EntropyEstimator(Protocol):
  """What :class:`ebm_gan.game.EBMGame` needs from an entropy estimator."""
  players: tuple[str, ...]
  value_name: str | None

  def init(self, key, generator, params, z) -> dict[str, Any]: ...
  def sample(self, generator, params, z, key) -> jax.Array: ...
  def entropy(self, generator, params, z, x, key) -> tuple[jax.Array, dict]: ...
  def losses(self, generator, params, z, x, key) -> dict[str, tuple[jax.Array, dict]]: ...


class PushForward:
  """Shared defaults: x = G_f(z), no extra players, a value that estimates H."""
  players: tuple[str, ...] = ()
  value_name: str | None = "entropy"

  def init(self, key, generator, params, z):
    return {}

  def sample(self, generator, params, z, key):
    return generator.apply(params["generator"], z)

  def losses(self, generator, params, z, x, key):
    return {}


@dataclasses.dataclass(frozen=True)
class NoEntropy(PushForward):
  """Ĥ = 0: the game is L1 alone (a Wasserstein-like critic, no max-entropy term)."""
  value_name = None

  def entropy(self, generator, params, z, x, key):
    return jnp.zeros((), x.dtype), {}


def score_surrogate(value: jax.Array, score: jax.Array, x: jax.Array) -> jax.Array:
  """A scalar with the value ``value`` and the gradient −(1/B) Σ_i sg(ŝ_i)ᵀ ∂x_i (docs/theory.md (4.6)).

  .. math::  h = Ĥ + S − \\mathrm{sg}(S),\\qquad S = −\\frac{1}{B} Σ_i \\mathrm{sg}(ŝ_i)ᵀ x_i

  With ŝ_i ≈ ∇_x log q_f(x_i), ∇_f h is the Monte Carlo form of (4.1),
  ∇_f H = −E[s_f(x)ᵀ ∂_f x]. ``score`` and ``value`` are constants here (stopped),
  x[B, ...] carries the generator's parameters; ``score`` has x's flattened shape [B, d].
  """
  x = x.reshape(x.shape[0], -1)
  score, value = jax.lax.stop_gradient((score, value))
  surrogate = -jnp.mean(jnp.sum(score * x, axis=-1))
  return value + surrogate - jax.lax.stop_gradient(surrogate)
