"""DCGAN-style convolutional players for images x[B, H, W, C] (docs/theory.md §2, §10).

* :class:`ConvEnergy`: x[B, H, W, C] → U[B] (a log-unnormalised density, one scalar per
  sample), strided convolutions with LeakyReLU(0.2) and a linear read-out (Radford et al.
  2016, without batch normalisation: the game's players are plain parameter pytrees with no
  ``batch_stats`` collection).
* :class:`ConvGenerator`: z[B, latent_dim] → x[B, H, W, C] ∈ [−1, 1]: a dense layer to a
  small feature map, ×2 nearest-neighbour upsamplings each followed by a 3×3 convolution
  (upsample + conv rather than transposed convolutions: no checkerboard artefacts, and the
  same layer serves every size), tanh.

Images are square, H = W ≥ 4; both players halve (double) the side ``n`` times, n the
number of times H can be halved while staying even and ≥ 4: 8 → 4 (n = 1), 28 → 14 → 7
(n = 2), 32 → 16 → 8 → 4 (n = 3).

Normalisation ``'spectral'`` divides every kernel by its largest singular value
(Miyato et al. 2018), computed exactly and statelessly (:func:`spectral_normalise`). The
generator may also normalise its hidden feature maps, ``feature_normalisation='group'``
(group normalisation, Wu & He 2018: statistics of each sample's own features, so no state;
batch normalisation would need running batch statistics, a mutable collection the game's
plain parameter pytrees do not carry).
"""

from __future__ import annotations

import math
from typing import Sequence

import chex
import flax.linen as nn
import jax
import jax.numpy as jnp

from ebm_gan.errors import InvalidArgumentError, check_positive

NORMALISATIONS = ("none", "spectral")
FEATURE_NORMALISATIONS = ("none", "group")


def spectral_norm(kernel: jax.Array) -> jax.Array:
  """σ_max(W) of the kernel seen as a matrix W[fan_in, out] (all axes but the last flattened).

  The top singular vector is the top eigenvector of the smaller Gram matrix (WᵀW or WWᵀ),
  computed exactly by ``eigh`` under ``stop_gradient``; then σ = ‖W v‖ (or ‖uᵀ W‖).
  Its gradient is ∂σ/∂W = u vᵀ, the exact derivative of a simple top singular value:
  the stopped vector contributes nothing at first order because it maximises ‖W v‖
  (docs/theory.md (10.1)). No state is carried between calls, unlike SN-GAN's one
  persistent power-iteration step, so the players' parameters stay plain pytrees.
  A nearly repeated top singular value only makes v a mix of the top vectors, which
  changes ‖W v‖ at second order.
  """
  w = kernel.reshape(-1, kernel.shape[-1])
  if w.shape[0] < w.shape[1]:                        # σ(W) = σ(Wᵀ): the smaller Gram
    w = w.T
  ws = jax.lax.stop_gradient(w)
  _, vectors = jnp.linalg.eigh(ws.T @ ws)            # ascending eigenvalues
  v = vectors[:, -1]
  return jnp.linalg.norm(w @ v)


def spectral_normalise(kernel: jax.Array) -> jax.Array:
  """W / σ_max(W) (:func:`spectral_norm`): a kernel whose matrix has spectral norm 1."""
  return kernel / spectral_norm(kernel)


def _check_normalisation(normalisation):
  if normalisation not in NORMALISATIONS:
    raise InvalidArgumentError(f"normalisation={normalisation!r} is not allowed; "
                               f"allowed: {', '.join(NORMALISATIONS)}.")


def group_count(channels: int, groups: int) -> int:
  """G = gcd(C, groups): the most groups, at most ``groups``, that split C channels evenly."""
  return math.gcd(channels, groups)


def _check_feature_normalisation(name):
  if name not in FEATURE_NORMALISATIONS:
    raise InvalidArgumentError(f"feature_normalisation={name!r} is not allowed; "
                               f"allowed: {', '.join(FEATURE_NORMALISATIONS)}.")


def flat_lecun_normal(key: jax.Array, shape: Sequence[int], dtype=jnp.float32) -> jax.Array:
  """LeCun normal init of a kernel whose last axis is the output: N(0, 1/fan_in) truncated
  at ±2 std (flax's ``lecun_normal``), fan_in = the product of every axis but the last.

  The numbers are drawn as one flat vector and reshaped. With jax's partitionable threefry
  (the default) a draw's bits depend only on each element's linear index, so they are the
  numbers ``lecun_normal()(key, shape)`` gives; but XLA:CPU compiles a 4-D draw several times
  slower than a flat one (BUILD.md, Benchmarks), and a conv player's initialisation is
  otherwise most of a small image run's start-up.
  """
  fan_in = 1
  for d in shape[:-1]:
    fan_in *= d
  size = fan_in * shape[-1]
  std = (1.0 / fan_in) ** 0.5 / 0.87962566103423978  # the std of N(0,1) cut at ±2 is 0.8796
  return (jax.random.truncated_normal(key, -2.0, 2.0, (size,), dtype) * std).reshape(shape)


class NormalisedConv(nn.Module):
  """y = conv(x, K̂) + b, K̂ = K or K/σ_max(K) ('spectral'); K[k, k, C_in, features], SAME padding."""
  features: int
  kernel_size: int = 3
  stride: int = 1
  normalisation: str = "none"

  @nn.compact
  def __call__(self, x):
    _check_normalisation(self.normalisation)
    shape = (self.kernel_size, self.kernel_size, x.shape[-1], self.features)
    kernel = self.param("kernel", flat_lecun_normal, shape)
    bias = self.param("bias", nn.initializers.zeros, (self.features,))
    if self.normalisation == "spectral":
      kernel = spectral_normalise(kernel)
    y = jax.lax.conv_general_dilated(x, kernel, (self.stride, self.stride), "SAME",
                                     dimension_numbers=("NHWC", "HWIO", "NHWC"))
    return y + bias


class NormalisedDense(nn.Module):
  """y = x Ŵ + b, Ŵ = W or W/σ_max(W) ('spectral'); W[d_in, features]."""
  features: int
  normalisation: str = "none"

  @nn.compact
  def __call__(self, x):
    _check_normalisation(self.normalisation)
    kernel = self.param("kernel", nn.initializers.lecun_normal(), (x.shape[-1], self.features))
    bias = self.param("bias", nn.initializers.zeros, (self.features,))
    if self.normalisation == "spectral":
      kernel = spectral_normalise(kernel)
    return x @ kernel + bias


def halvings(side: int) -> int:
  """n: how many times ``side`` halves while it stays even and the half is ≥ 4 (8→1, 28→2, 32→3)."""
  n = 0
  while side % 2 == 0 and side // 2 >= 4:
    side //= 2
    n += 1
  return n


def check_image_shape(shape: Sequence[int], argument: str = "image_shape") -> tuple[int, int, int]:
  """(H, W, C) if it is a square image of side ≥ 4 with C ≥ 1 channels, else InvalidArgumentError."""
  shape = tuple(shape)
  ok = (len(shape) == 3 and all(isinstance(s, int) and not isinstance(s, bool) for s in shape)
        and shape[0] == shape[1] and shape[0] >= 4 and shape[2] >= 1)
  if not ok:
    raise InvalidArgumentError(
        f"{argument}={shape!r} is not allowed; expected (H, W, C) with H = W ≥ 4 and C ≥ 1 "
        "(e.g. (8, 8, 1), (28, 28, 1), (32, 32, 3)).")
  return shape


class ConvEnergy(nn.Module):
  """U_m(x) ∈ ℝ per sample: x[B, H, W, C] → U[B] (also usable as a GAN logit).

  conv3×3(width) → [conv4×4 stride 2 (width·2^i) → LeakyReLU(0.2)] × n → flatten →
  dense(1), LeakyReLU(0.2) after every convolution, n = :func:`halvings` (H).

  Attributes:
    width: channels of the first convolution (doubled at each halving).
    normalisation: ``'none'`` or ``'spectral'`` (every kernel, the read-out included).
  """
  width: int = 64
  normalisation: str = "none"

  @nn.compact
  def __call__(self, x):
    check_positive(self.width, "width", integer=True)
    if x.ndim != 4:
      raise InvalidArgumentError(f"x of shape {x.shape} is not allowed; ConvEnergy expects "
                                 "images x[B, H, W, C].")
    check_image_shape(x.shape[1:], "image shape")
    act = lambda h: nn.leaky_relu(h, 0.2)
    h = act(NormalisedConv(self.width, 3, 1, self.normalisation)(x))
    for i in range(halvings(x.shape[1])):
      h = act(NormalisedConv(self.width * 2 ** (i + 1), 4, 2, self.normalisation)(h))
    u = NormalisedDense(1, self.normalisation)(h.reshape(h.shape[0], -1))[:, 0]
    chex.assert_shape(u, x.shape[:1])
    return u


class ConvGenerator(nn.Module):
  """G_f(z) ∈ [−1, 1]^{H×W×C}: z[B, latent_dim] → x[B, H, W, C].

  dense → reshape to (H/2ⁿ, H/2ⁿ, width·2ⁿ) → N → ReLU → [upsample×2 → conv3×3
  (width·2^(n−1−i)) → N → ReLU] × n → conv3×3(C) → tanh, n = :func:`halvings` (H); N is the
  identity, or with ``feature_normalisation='group'`` group normalisation of every hidden map
  (not of the output): its C channels in G = gcd(C, groups) groups g of C/G channels, and for
  each sample b

      μ_bg = mean of h[b, y, x, c] over the positions y, x and the channels c ∈ g,
      σ²_bg = the variance of the same values,
      N(h)[b, y, x, c] = γ_c (h[b, y, x, c] − μ_bg) / √(σ²_bg + ε) + β_c   (ε = 10⁻⁶)

  (flax's ``GroupNorm``; γ = 1, β = 0 at initialisation). Each sample is normalised by its own
  statistics: no batch statistics, no state, the same output for a sample alone or in a batch.

  Attributes:
    image_shape: (H, W, C), H = W ≥ 4.
    latent_dim: dimension of z.
    width: channels of the last hidden feature map (doubled towards the input).
    normalisation: ``'none'`` or ``'spectral'`` (the kernels).
    feature_normalisation: ``'none'`` or ``'group'`` (the hidden feature maps).
    groups: at most this many groups per normalised map (G = gcd(C, groups)).
  """
  image_shape: tuple[int, int, int]
  latent_dim: int
  width: int = 64
  normalisation: str = "none"
  feature_normalisation: str = "none"
  groups: int = 8

  @nn.compact
  def __call__(self, z):
    side, _, channels = check_image_shape(self.image_shape)
    check_positive(self.width, "width", integer=True)
    check_positive(self.groups, "groups", integer=True)
    _check_feature_normalisation(self.feature_normalisation)
    chex.assert_shape(z, (None, self.latent_dim))

    def normalise(h):
      if self.feature_normalisation == "none":
        return h
      return nn.GroupNorm(num_groups=group_count(h.shape[-1], self.groups))(h)
    n = halvings(side)
    start, features = side // 2 ** n, self.width * 2 ** n
    h = NormalisedDense(start * start * features, self.normalisation)(z)
    h = nn.relu(normalise(h.reshape(z.shape[0], start, start, features)))
    for i in range(n):
      h = jnp.repeat(jnp.repeat(h, 2, axis=1), 2, axis=2)          # nearest ×2
      h = NormalisedConv(self.width * 2 ** (n - 1 - i), 3, 1, self.normalisation)(h)
      h = nn.relu(normalise(h))
    x = jnp.tanh(NormalisedConv(channels, 3, 1, self.normalisation)(h))
    chex.assert_shape(x, (z.shape[0], side, side, channels))
    return x
