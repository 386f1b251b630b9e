"""Games: the gradient of every player's own loss from ONE ``jax.grad`` (docs/theory.md §8).

Each player i minimises its own loss ℓ_i(θ_i, θ_{−i}). With sg the stop-gradient,

    ∇_θ Σ_j ℓ_j(θ_j, sg(θ_{−j}))  restricted to θ_i  =  ∇_{θ_i} ℓ_i(θ_i, θ_{−i}),

because in ℓ_j (j ≠ i) player i's parameters are constants. So one backward
pass over the summed losses returns every player's own gradient — the
mechanism behind :class:`EBMGame` (docs/theory.md §3: the energy maximises L1, the
generator maximises L2) and :class:`GANGame`. XLA merges the forward passes the
players share (stop_gradient is the identity on values), so the sum costs one
forward of each network, not one per player.

Sign convention: U is a log-unnormalised density (higher U = more probable), a
maximising player's loss is its negated objective, and a player's direction is
the gradient of its own loss, ready for optax (which subtracts it).
"""

from __future__ import annotations

import dataclasses
import functools
from typing import Any, Callable, ClassVar

import flax.linen as nn
import jax
import jax.numpy as jnp

from ebm_gan import objectives, parallel, sampling
from ebm_gan.directions import joint_directions
from ebm_gan.protocol import Game, check_game, player_losses  # noqa: F401  (re-exported)
from ebm_gan.entropy.base import NoEntropy
from ebm_gan.errors import InvalidArgumentError

Params = dict[str, Any]


def _latents(key, n, latent_dim):
  """n latents z ~ N(0, I), split over the devices when run over a global batch (ebm_gan.parallel)."""
  return parallel.shard_batch(jax.random.normal(key, (n, latent_dim)))


def _resolve_latent_dim(game) -> None:
  """The game's ``latent_dim``: as given, else the generator module's own attribute."""
  latent_dim = game.latent_dim
  if latent_dim is None:
    latent_dim = getattr(game.generator, "latent_dim", None)
  if not isinstance(latent_dim, int) or isinstance(latent_dim, bool) or latent_dim < 1:
    raise InvalidArgumentError(
        f"latent_dim={latent_dim!r}: give the game latent_dim=<a positive int> (the size of "
        f"z the generator {type(game.generator).__name__} takes), or use a generator module "
        "with a latent_dim attribute.")
  object.__setattr__(game, "latent_dim", latent_dim)


@dataclasses.dataclass(frozen=True)
class EBMGame:
  """The maximum-entropy EBM-GAN game max_m min_f L3 (docs/theory.md §2–3).

  Players and their losses (each minimised):

  * ``energy``   (m):  −L1 = −E_p[U_m] + E_{q_f}[U_m]  (+ penalty);   ∇ = −∇_m L1 = −∇_m L3
  * ``generator`` (f): −L2 + log Z_m = −E_{q_f}[U_m] − λ·Ĥ(q_f);   ∇ = −∇_f L2 = ∇_f L3 (λ = 1)
  * the entropy estimator's own players, if any (e.g. a statistics network).

  Ĥ is the entropy estimator's value (or a surrogate with the right gradient);
  λ = ``entropy_weight`` (1 is the seed's objective, 0 drops the max-entropy term).

  Attributes:
    energy: flax module x[B, ...] → U[B] (a log-unnormalised density).
    generator: flax module z[B, latent_dim] → x[B, ...]; needs ``latent_dim``.
    entropy: an :class:`ebm_gan.entropy.EntropyEstimator`.
    penalty: optional ``penalty(energy_fn, x_data, x_gen, key) -> scalar``
      added to the energy's loss (see ``objectives.score_penalty``).
    entropy_weight: λ above.
    height_weight: α of the height penalty α·E_p[U_m²] added to the energy's loss
      (docs/theory.md (6.11)): it ties the modes' log-heights, which L1 leaves free;
      unlike ``penalty`` it is not annealed.
    negative_steps: K ≥ 0. With K > 0 the energy's negatives are the generator's samples
      moved by K MALA steps on q_m ∝ exp U_m in data space (docs/theory.md (11.5)), a
      better stand-in for q_m in ∇_m L1 = E_p[∇U_m] − E_{q_m}[∇U_m]; 0 keeps x ~ q_f
      (the seed's L1). The generator's loss never sees them.
    negative_step_size: ε of those MALA steps, in squared data units.
    latent_dim: the size of the generator's input z; None takes the generator module's
      ``latent_dim`` attribute, so any flax module z[B, latent_dim] → x works.

  Games are frozen values: two built with equal settings are equal and hash alike, so the
  jitted ``value_and_directions`` compiles once for both.
  """
  has_energy: ClassVar[bool] = True
  energy: nn.Module
  generator: nn.Module
  entropy: Any = dataclasses.field(default_factory=NoEntropy)
  penalty: Callable | None = None
  entropy_weight: float = 1.0
  height_weight: float = 0.0
  negative_steps: int = 0
  negative_step_size: float = 0.01
  latent_dim: int | None = None

  def __post_init__(self):
    _resolve_latent_dim(self)

  @property
  def players(self) -> tuple[str, ...]:
    return ("energy", "generator") + tuple(self.entropy.players)

  @property
  def critics(self) -> tuple[str, ...]:
    """Players that move first in alternating updates: the energy and estimator players."""
    return ("energy",) + tuple(self.entropy.players)

  def init(self, key: jax.Array, x_example: jax.Array) -> Params:
    """Initialises every player's parameters from one example batch."""
    k_e, k_g, k_h = jax.random.split(key, 3)
    z = _latents(k_g, x_example.shape[0], self.latent_dim)
    params = {"energy": self.energy.init(k_e, x_example),
              "generator": self.generator.init(k_g, z)}
    params.update(self.entropy.init(k_h, self.generator, params, z))
    return params

  def sample(self, params: Params, key: jax.Array, n: int):
    """Draws ``(x, z)``: n generator samples x ~ q_f and their latents z."""
    return self._draw(params, key, n)[:2]

  def _draw(self, params, key, n):
    """``(x, z, entropy)``: the sample, and ``(Ĥ, metrics)`` when the estimator computes it
    in the same forward pass (``sample_and_entropy``, e.g. a flow's log-determinant), else None."""
    k_z, k_x = jax.random.split(key)
    z = _latents(k_z, n, self.latent_dim)
    joint = getattr(self.entropy, "sample_and_entropy", None)
    if joint is None:
      return self.entropy.sample(self.generator, params, z, k_x), z, None
    x, entropy = joint(self.generator, params, z, k_x)
    return x, z, entropy

  def energy_fn(self, params: Params) -> Callable[[jax.Array], jax.Array]:
    """x ↦ U_m(x) for the given parameters."""
    return lambda x: self.energy.apply(params["energy"], x)

  critic_fn = energy_fn

  def player_losses(self, penalty_scale=1.0) -> dict[str, Callable]:
    """Each player's loss ``(params, batch, key) -> (loss, aux)`` (:func:`player_losses`)."""
    return player_losses(self, penalty_scale)

  def losses(self, x_data: jax.Array, key: jax.Array, penalty_scale=1.0):
    """Per-player losses ``(params, shared) -> (loss, metrics)`` for one batch, and ``shared``.

    The penalty is multiplied by ``penalty_scale`` (an annealed weight γ_t = γ s_t,
    docs/theory.md (6.10); possibly traced).

    ``shared['generator']`` is the generator's sample ``(x, z, entropy)`` (``_draw``),
    drawn once per evaluation (:func:`joint_directions`); every loss reads it.
    """
    n = x_data.shape[0]
    k_sample, k_pen, k_ent = jax.random.split(key, 3)

    def energy_loss(p, s):
      x_gen = s["generator"][0]
      u = self.energy_fn(p)
      x_neg, metrics = self._negatives(p, x_gen, k_pen)
      u_data, u_gen = u(x_data), u(x_neg)
      l1 = objectives.l1(u_data, u_gen)
      loss = -l1
      metrics.update({"l1": l1, "u_data": jnp.mean(u_data), "u_gen": jnp.mean(u_gen)})
      if self.penalty is not None:
        pen = penalty_scale * self.penalty(u, x_data, x_gen, k_pen)
        metrics["penalty"] = pen
        loss = loss + pen
      if self.height_weight:
        metrics["height_penalty"] = self.height_weight * objectives.height_penalty(u_data)
        loss = loss + metrics["height_penalty"]
      return loss, metrics

    def generator_loss(p, s):
      x_gen, z, entropy = s["generator"]
      u_gen = self.energy_fn(p)(x_gen)
      h, h_metrics = (entropy if entropy is not None
                      else self.entropy.entropy(self.generator, p, z, x_gen, k_ent))
      loss = -(jnp.mean(u_gen) + self.entropy_weight * h)
      name = self.entropy.value_name
      return loss, ({name: h, **h_metrics} if name else h_metrics)

    losses = {"energy": energy_loss, "generator": generator_loss}
    for name in self.entropy.players:
      def extra_loss(p, s, name=name):
        x_gen, z, _ = s["generator"]
        return self.entropy.losses(self.generator, p, z, x_gen, k_ent)[name]
      losses[name] = extra_loss
    return losses, {"generator": lambda p: self._draw(p, k_sample, n)}

  def _negatives(self, params, x_gen, key):
    """``(x_neg, metrics)``: the energy's negatives, x_gen itself, or x_gen moved by
    ``negative_steps`` MALA steps targeting q_m ∝ exp U_m (docs/theory.md (11.5)).

    The chain runs on frozen parameters and its output is a constant to every player, as
    samples of q_m are in ∇_m log q_m(x) = ∇U_m(x) − E_{q_m}[∇U_m] (``x_gen`` already is one
    outside the generator's loss, :func:`joint_directions`). Its key is derived from ``key``
    only when the chain runs, so K = 0 keeps every other random stream.
    """
    if not self.negative_steps:
      return x_gen, {}
    u_frozen = self.energy_fn(jax.lax.stop_gradient(params))
    shape = x_gen.shape
    x, acceptance = sampling.mala(lambda v: u_frozen(v.reshape(shape)),
                                  x_gen.reshape(shape[0], -1),
                                  jax.random.fold_in(key, 1), self.negative_steps,
                                  self.negative_step_size)
    return jax.lax.stop_gradient(x.reshape(shape)), {"negative_acceptance": acceptance}

  def value_and_directions(self, params: Params, x_data: jax.Array, key: jax.Array,
                           players: tuple[str, ...] | None = None, penalty_scale=1.0):
    """L3 and every (or every listed) player's direction, from one jitted ``jax.grad``.

    ``penalty_scale`` multiplies the penalty's weight (an annealed γ_t = γ s_t,
    docs/theory.md (6.10); possibly traced).

    Returns:
      ``(value, directions)``; ``value`` is a dict with ``l1``, ``u_data``, ``u_gen``,
      the estimator's value under its ``value_name`` (``entropy`` with ``l3`` = L1 − Ĥ,
      docs/theory.md (3.1), when it estimates H; ``entropy_lower_bound`` or ``mi_bound``
      otherwise), each player's loss ``loss_<player>`` and, when set, ``penalty`` and
      ``negative_acceptance`` (then ``l1`` and ``u_gen`` are taken on the MALA-moved
      negatives, (11.5)); ``directions[p]`` is the gradient of player p's own loss (−∇_m L1 for the energy, −∇_f L2 for the
      generator), for the players in ``players`` (default: all). Only the listed
      players' losses are evaluated, so ``value`` then holds their metrics alone
      and no ``l3`` (an alternating critic step pays for the critics alone;
      ``summarise`` the merged metrics of a round).
    """
    return _value_and_directions(self, params, x_data, key, _moving(self, players),
                                 penalty_scale)

  def summarise(self, value: dict) -> dict:
    """Adds ``l3`` = L1 − Ĥ (docs/theory.md (3.1)) to the players' metrics (from one
    evaluation, or an alternating round's merge: L1 at θ_t, Ĥ where the generator moved),
    when the estimator's value estimates H (``value_name`` 'entropy'); a bound or MEG's
    regulariser would make it a number that is not L3, so it is left out then."""
    if "entropy" not in value:
      return value
    return dict(value, l3=value["l1"] - value["entropy"])


@dataclasses.dataclass(frozen=True)
class GANGame:
  """The vanilla GAN game (docs/theory.md §6) and its variants, with a logit discriminator.

  Players: ``discriminator`` (its loss from ``loss.discriminator``) and
  ``generator`` (``loss.generator``); see :mod:`ebm_gan.objectives` for the
  losses. The discriminator's logit plays the energy's role: at the optimum of
  the minimax loss, logit D*(x) = log p(x) − log q_G(x).

  Attributes:
    discriminator: flax module x → logit[B].
    generator: flax module z → x with attribute ``latent_dim``.
    loss: an ``objectives.GANLoss`` (minimax, non_saturating, wasserstein, hinge,
      least_squares).
    penalty: optional penalty on the discriminator's logit function.
    label_smoothing: one-sided smoothing s of the real labels (target 1 − s).
    latent_dim: the size of z; None takes the generator module's ``latent_dim``.
  """
  has_energy: ClassVar[bool] = False
  discriminator: nn.Module
  generator: nn.Module
  loss: objectives.GANLoss = objectives.GAN_LOSSES["non_saturating"]
  penalty: Callable | None = None
  label_smoothing: float = 0.0
  latent_dim: int | None = None

  def __post_init__(self):
    _resolve_latent_dim(self)

  @property
  def players(self) -> tuple[str, ...]:
    return ("discriminator", "generator")

  @property
  def critics(self) -> tuple[str, ...]:
    return ("discriminator",)

  def init(self, key, x_example):
    """Initialises both players from an example batch."""
    k_d, k_g = jax.random.split(key)
    z = _latents(k_g, x_example.shape[0], self.latent_dim)
    return {"discriminator": self.discriminator.init(k_d, x_example),
            "generator": self.generator.init(k_g, z)}

  def sample(self, params, key, n):
    """Draws ``(x, z)`` from the generator."""
    z = _latents(key, n, self.latent_dim)
    return self.generator.apply(params["generator"], z), z

  def critic_fn(self, params: Params) -> Callable[[jax.Array], jax.Array]:
    """x ↦ the discriminator's logit (plays U's role, docs/theory.md §6)."""
    return lambda x: self.discriminator.apply(params["discriminator"], x)

  def player_losses(self, penalty_scale=1.0) -> dict[str, Callable]:
    """Each player's loss ``(params, batch, key) -> (loss, aux)`` (:func:`player_losses`)."""
    return player_losses(self, penalty_scale)

  def losses(self, x_data, key, penalty_scale=1.0):
    """Per-player losses ``(params, shared) -> (loss, metrics)`` and ``shared`` (the sample);
    the penalty times ``penalty_scale``."""
    n = x_data.shape[0]
    k_sample, k_pen = jax.random.split(key)

    def disc_loss(p, s):
      logit = self.critic_fn(p)
      x_gen, _ = s["generator"]
      real, fake = logit(x_data), logit(x_gen)
      loss = self.loss.discriminator(real, fake, self.label_smoothing)
      metrics = {"logit_data": jnp.mean(real), "logit_gen": jnp.mean(fake)}
      if self.penalty is not None:
        metrics["penalty"] = penalty_scale * self.penalty(logit, x_data, x_gen, k_pen)
        loss = loss + metrics["penalty"]
      return loss, metrics

    def gen_loss(p, s):
      x_gen, _ = s["generator"]
      return self.loss.generator(self.discriminator.apply(p["discriminator"], x_gen)), {}

    return ({"discriminator": disc_loss, "generator": gen_loss},
            {"generator": lambda p: self.sample(p, k_sample, n)})

  def value_and_directions(self, params, x_data, key, players=None, penalty_scale=1.0):
    """Per-player losses (``loss_<player>``), metrics and the (listed) players' directions."""
    return _value_and_directions(self, params, x_data, key, _moving(self, players),
                                 penalty_scale)

  def summarise(self, value: dict) -> dict:
    """The metrics as they are: a GAN has no L3."""
    return value


def _moving(game, players) -> tuple[str, ...]:
  """The moving players as a hashable tuple in the game's order; unknown names are refused."""
  if players is None:
    return tuple(game.players)
  unknown = [p for p in players if p not in game.players]
  if unknown:
    raise InvalidArgumentError(f"players={list(players)!r} names {unknown}, which are not "
                               f"players of the game; allowed: {list(game.players)}.")
  return tuple(p for p in game.players if p in players)


@functools.partial(jax.jit, static_argnums=(0, 4))
def _value_and_directions(game, params, x_data, key, players, penalty_scale=1.0):
  """The game's metrics (its players' aux, ``loss_<player>``) and the moving players' directions."""
  losses, shared = game.losses(x_data, key, penalty_scale)
  values, directions, aux = joint_directions(losses, params, has_aux=True, players=players,
                                             shared=shared)
  value = {k: v for metrics in aux.values() for k, v in metrics.items()}
  value.update({f"loss_{p}": v for p, v in values.items()})
  if set(players) == set(game.players):
    value = game.summarise(value)
  return value, {p: directions[p] for p in players}
