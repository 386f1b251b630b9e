"""The mutual-information entropy estimator of MEG (Kumar et al. 2019; docs/theory.md §4).

For x = G_f(z) + σε, H(x) = I(x; z) + H(x | z) with H(x | z) = ½ d log(2πeσ²)
independent of f, so ∇_f H = ∇_f I(x; z). A statistics network T_ψ(x, z) —
a third player — maximises a variational lower bound of I(x; z) on joint
pairs (x_i, z_i) against product-of-marginals pairs (x_i, z_{i+s}) (latents
shifted by s = 1..``negatives`` within the batch), and the generator maximises
the same bound:

.. math::

  I_{JSD}(T) = E_{p(x,z)}[−\\mathrm{sp}(−T)] − E_{p(x)p(z)}[\\mathrm{sp}(T)]
  \\quad (\\text{Deep InfoMax / f-GAN; maximised by } T^* = \\log \\tfrac{p(x,z)}{p(x)p(z)}),

  I_{DV}(T) = E_{p(x,z)}[T] − \\log E_{p(x)p(z)}[e^T] \\;≤\\; I(x; z)
  \\quad (\\text{Donsker–Varadhan, MINE; tight at the same } T^*).

At T* the envelope theorem makes the generator's gradient of I_DV exactly
∇_f I; that of I_JSD is the gradient of a Jensen–Shannon divergence between
the joint and the product of marginals, which moves the same way (MEG's choice:
lower variance). The reported value is H(x|z) + I_DV(T), a lower bound of H
for any T (σ > 0; with σ = 0, MEG's deterministic generator, only I_DV).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Sequence

import flax.linen as nn
import jax
import jax.numpy as jnp

from ebm_gan.entropy.noisy import add_noise, conditional_entropy
from ebm_gan.errors import InvalidArgumentError, check_positive
from ebm_gan.models.mlp import MLP

BOUNDS = ("jsd", "dv")


class StatisticsNetwork(nn.Module):
  """T_ψ(x, z) = MLP([x, z]) ∈ ℝ per pair: (x[B, ...], z[B, k]) → T[B]."""
  hidden: Sequence[int] = (256, 256)
  activation: str = "relu"

  @nn.compact
  def __call__(self, x, z):
    xz = jnp.concatenate([x.reshape(x.shape[0], -1), z], axis=-1)
    return MLP(tuple(self.hidden), 1, self.activation)(xz)[:, 0]


def mi_bounds(t_joint: jax.Array, t_marginal: jax.Array) -> tuple[jax.Array, jax.Array]:
  """(I_JSD, I_DV) from statistics on joint pairs t_joint[B] and marginal pairs t_marginal[N].

  I_JSD = mean(−softplus(−t_joint)) − mean(softplus(t_marginal));
  I_DV = mean(t_joint) − log mean(exp t_marginal).
  """
  jsd = jnp.mean(-jax.nn.softplus(-t_joint)) - jnp.mean(jax.nn.softplus(t_marginal))
  dv = jnp.mean(t_joint) - (jax.nn.logsumexp(t_marginal) - math.log(t_marginal.size))
  return jsd, dv


@dataclasses.dataclass(frozen=True)
class MutualInformation:
  """MEG's estimator: the generator maximises a statistics network's bound of I(x; z).

  Brings the player ``'statistics'`` (loss −I_bound(T_ψ), generator fixed).
  ``h``'s value is H(x|z) + I_DV (module docstring), its gradient that of the
  chosen bound; it is logged as ``mi_bound``, not as an entropy: at σ = 0 (MEG's
  deterministic generator) I(x; z) = ∞ and nothing ties the bound to H or its gradient
  to ∇H (docs/theory.md (4.10); measured in results/entropy_gradients.md).

  Attributes:
    sigma: σ ≥ 0 of x = G_f(z) + σε (0: MEG's deterministic generator).
    bound: ``'jsd'`` or ``'dv'``: what both the network and the generator maximise.
    hidden: the statistics network's widths.
    activation: its activation.
    negatives: marginal pairs per sample (latent shifts 1..negatives).
  """
  sigma: float = 0.0
  bound: str = "jsd"
  hidden: tuple[int, ...] = (256, 256)
  activation: str = "relu"
  negatives: int = 1

  players = ("statistics",)
  value_name = "mi_bound"

  def __post_init__(self):
    if isinstance(self.sigma, bool) or not isinstance(self.sigma, (int, float)) or self.sigma < 0:
      raise InvalidArgumentError(f"sigma={self.sigma!r} is not allowed; expected a number ≥ 0.")
    if self.bound not in BOUNDS:
      raise InvalidArgumentError(f"bound={self.bound!r} is not allowed; "
                        f"allowed: {', '.join(BOUNDS)}.")
    check_positive(self.negatives, "negatives", integer=True)

  @property
  def network(self) -> StatisticsNetwork:
    return StatisticsNetwork(self.hidden, self.activation)

  def init(self, key, generator, params, z):
    x = generator.apply(params["generator"], z)
    return {"statistics": self.network.init(key, x, z)}

  def sample(self, generator, params, z, key):
    if self.sigma == 0:
      return generator.apply(params["generator"], z)
    return add_noise(generator, params, z, key, self.sigma)

  def _bounds(self, params, z, x):
    """(I_JSD, I_DV) on the batch: joint pairs (x_i, z_i), marginal (x_i, z_{i+s})."""
    t = lambda zz: self.network.apply(params["statistics"], x, zz)
    t_marginal = jnp.concatenate([t(jnp.roll(z, s, axis=0))
                                  for s in range(1, self.negatives + 1)])
    return mi_bounds(t(z), t_marginal)

  def entropy(self, generator, params, z, x, key):
    jsd, dv = self._bounds(params, z, x)
    bound = jsd if self.bound == "jsd" else dv
    value = dv
    if self.sigma > 0:
      value = value + conditional_entropy(math.prod(x.shape[1:]), self.sigma)
    return jax.lax.stop_gradient(value) + bound - jax.lax.stop_gradient(bound), {}

  def losses(self, generator, params, z, x, key):
    jsd, dv = self._bounds(params, z, x)
    bound = jsd if self.bound == "jsd" else dv
    return {"statistics": (-bound, {"mi_jsd": jsd, "mi_dv": dv})}
