"""Image datasets held in memory, sampled jittably: ``sample(key, n) -> x[n, H, W, C]`` in [−1, 1].

An :class:`ImageDataset` keeps a training split and a held-out split as uint8 arrays
``[N, H, W, C]`` with int32 labels, and draws a batch by indices sampled uniformly
*with replacement* from the key. The batch is therefore a pure function of the key,
and since the train loop draws the batch of step t from ``fold_in(fold_in(run_key,
DATA), t)`` (``ebm_gan.train.data_key``), it is a function of (seed, step): there is no
shuffling state or epoch position to save, a resumed run sees exactly the batches an
uninterrupted run sees, and the batches do not depend on the number of devices — the
same contract as the 2-D toy samplers of :mod:`ebm_gan.data.toy`.

Stacked datasets (:func:`stacked`, the StackedMNIST protocol of VEEGAN/PacGAN/MEG): a
sample puts ``k`` (= 3, or 4 for MEG's 4-stack) independently drawn base images in the
channels; its label is ``d1·c^(k−1) + … + dk`` for a base of c classes (100·d1 + 10·d2 + d3:
1000 modes; 10 000 for k = 4).
Drawn by k index draws inside the jitted program, never materialised.

Large arrays and jit: a function that closes over an array embeds it in the compiled
program as a constant, which for an MNIST-sized array multiplies the program's size and
compile time (measured: BUILD.md, Datasets). So :meth:`ImageDataset.sample` (the closure
form) is for small sets such as
:func:`digits` (115 KB), and for large ones the program takes :meth:`ImageDataset.arrays`
as an argument and builds its sampler with :meth:`ImageDataset.sampler` inside the
traced function (see that method).

Datasets here: :func:`digits`, :func:`stacked_digits` and :func:`stacked4_digits`
(scikit-learn's 1797 real 8×8 UCI digits, offline); MNIST, Fashion-MNIST, CIFAR-10 and StackedMNIST through
``tfds.data_source`` live in :mod:`ebm_gan.data.tfds_source`.
"""

from __future__ import annotations

import dataclasses
from typing import Callable, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from ebm_gan.errors import InvalidArgumentError, check_positive


class ImageArrays(NamedTuple):
  """One split: ``images`` uint8 [N, H, W, C] in 0..max_value, ``labels`` int32 [N] (a pytree)."""
  images: np.ndarray | jax.Array
  labels: np.ndarray | jax.Array


@dataclasses.dataclass(frozen=True, eq=False)
class ImageDataset:
  """An image dataset in memory: a training split to sample from and a held-out split.

  Attributes:
    name: e.g. ``'digits'``, ``'stacked_mnist'``.
    train: the training split (numpy), what :meth:`sample` draws from.
    test: the held-out split (numpy), for evaluation (:meth:`held_out`).
    base_classes: classes of one base image (10 for digits, MNIST, CIFAR-10).
    max_value: the largest pixel value; x ↦ 2x / max_value − 1 maps pixels to [−1, 1].
    stack: base images stacked along the channels per sample (1, or 3 for StackedMNIST).
    base_name: a stacked dataset's base dataset (``'digits'`` for ``'stacked_digits'``);
      '' for an unstacked one.
  """
  name: str
  train: ImageArrays
  test: ImageArrays
  base_classes: int = 10
  max_value: int = 255
  stack: int = 1
  base_name: str = ""

  @property
  def shape(self) -> tuple[int, int, int]:
    """(H, W, C) of one sample: the base image's channels times ``stack``."""
    h, w, c = self.train.images.shape[1:]
    return (h, w, c * self.stack)

  @property
  def num_classes(self) -> int:
    """Labels of one sample: base_classes ** stack (10; 1000 or 10 000 for 3 or 4 stacked)."""
    return self.base_classes ** self.stack

  def base(self) -> ImageDataset:
    """The unstacked base dataset (the same splits, stack 1): what a stacked one's channels are."""
    return dataclasses.replace(self, name=self.base_name or self.name, stack=1, base_name="")

  def to_float(self, images) -> jax.Array:
    """Pixels 0..max_value → float32 in [−1, 1]: x ↦ 2x / max_value − 1.

    (Not called ``scale``: on the 2-D toy datasets ``scale`` is the pictures' box.)
    """
    return images.astype(jnp.float32) * (2.0 / self.max_value) - 1.0

  def arrays(self) -> ImageArrays:
    """The training split as device arrays, to pass to a jitted program as an argument."""
    return jax.device_put(self.train)

  def sampler(self, arrays: ImageArrays, *, with_labels: bool = False) -> Callable:
    """``sample(key, n)`` drawing from ``arrays`` (e.g. a jitted function's argument).

    Indices i_1..i_stack ~ Uniform{0..N−1}^n are drawn with replacement from
    ``jax.random.split(key, stack)``; sample r stacks images[i_j[r]] along the
    channels and has the label Σ_j labels[i_j[r]] · base_classes^(stack−1−j).
    Inside ``jax.jit(lambda state, arrays: make_chunk(step, n, ds.sampler(arrays),
    batch)(state))`` the arrays stay an argument, not a compiled-in constant.

    Returns:
      ``sample(key, n) -> float32 [n, H, W, C]`` in [−1, 1], or with ``with_labels``
      ``-> (images, int32 labels [n])``.
    """
    def sample(key: jax.Array, n: int):
      images, labels = jnp.asarray(arrays.images), jnp.asarray(arrays.labels)
      idx = jax.vmap(lambda k: jax.random.randint(k, (n,), 0, len(labels)))(
          jax.random.split(key, self.stack))                     # [stack, n]
      x = self.to_float(jnp.concatenate(list(images[idx]), axis=-1))  # [n, H, W, C·stack]
      return (x, _stacked_labels(labels[idx], self.base_classes)) if with_labels else x
    return sample

  def sample(self, key: jax.Array, n: int) -> jax.Array:
    """n training images, float32 [n, H, W, C] in [−1, 1] (closes over the split; see the module doc)."""
    return self.sampler(self.train)(key, n)

  def sample_with_labels(self, key: jax.Array, n: int) -> tuple[jax.Array, jax.Array]:
    """n training images and their int32 labels [n] (the same draw as :meth:`sample`)."""
    return self.sampler(self.train, with_labels=True)(key, n)

  def held_out(self) -> tuple[np.ndarray, np.ndarray]:
    """The held-out split scaled to [−1, 1] (float32 numpy) and its labels.

    A stacked dataset stacks the held-out base images deterministically: channel 0
    takes them in order, channel j > 0 in a fixed permutation (numpy seed j), so each
    held-out image appears once per channel and no training image appears.
    """
    return _deterministic_stack(self, self.test)

  def training_set(self) -> tuple[np.ndarray, np.ndarray]:
    """The training split scaled to [−1, 1] and its labels (stacked as :meth:`held_out`)."""
    return _deterministic_stack(self, self.train)


def _stacked_labels(labels, base: int):
  """Σ_j labels[j] · base^(k−1−j) for labels [k, n] (100·d1 + 10·d2 + d3 for k = 3, base 10)."""
  k = labels.shape[0]
  weights = base ** np.arange(k - 1, -1, -1)
  return jnp.tensordot(weights.astype(np.int32), labels.astype(jnp.int32), axes=1)


def _deterministic_stack(ds: ImageDataset, split: ImageArrays) -> tuple[np.ndarray, np.ndarray]:
  """A split stacked ``ds.stack`` times (channel j in the permutation of numpy seed j; 0 in order)."""
  n = len(split.labels)
  idx = np.stack([np.arange(n)] + [np.random.default_rng(j).permutation(n)
                                   for j in range(1, ds.stack)])
  images = np.concatenate(list(split.images[idx]), axis=-1)
  labels = np.asarray(_stacked_labels(split.labels[idx], ds.base_classes))
  return np.asarray(ds.to_float(images)), labels


def stacked(base: ImageDataset, k: int = 3) -> ImageDataset:
  """``k`` independent base images as k channels, label Σ_j d_j · c^(k−1−j) (StackedMNIST for k=3).

  The base must have one channel (stacking colour images is not the protocol). Named
  ``stacked_<base>`` for k = 3 and ``stacked<k>_<base>`` otherwise (``stacked4_digits``).
  """
  check_positive(k, "k", integer=True)
  if base.shape[-1] != 1 or base.stack != 1:
    raise InvalidArgumentError(
        f"base={base.name!r} has shape {base.shape}; stacked() needs a one-channel, "
        f"unstacked base dataset (e.g. digits, mnist, fashion_mnist).")
  prefix = "stacked_" if k == 3 else f"stacked{k}_"
  return dataclasses.replace(base, name=prefix + base.name, stack=k, base_name=base.name)


def stratified_split(labels: np.ndarray, held_out_fraction: float,
                     seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
  """(train indices, held-out indices): round(fraction · n_c) of each class c held out.

  Within each class the held-out examples are the first of a numpy permutation
  (``default_rng(seed)``, classes in increasing order), so the split is deterministic;
  both index arrays are sorted.
  """
  if not 0 < held_out_fraction < 1:
    raise InvalidArgumentError(f"held_out_fraction={held_out_fraction!r} is not allowed; "
                               f"expected a number strictly between 0 and 1.")
  rng = np.random.default_rng(seed)
  held = []
  for c in np.unique(labels):
    members = rng.permutation(np.flatnonzero(labels == c))
    held.append(members[:round(held_out_fraction * len(members))])
  held = np.sort(np.concatenate(held))
  return np.setdiff1d(np.arange(len(labels)), held), held


DIGITS_HELD_OUT_FRACTION = 0.2


def digits(held_out_fraction: float = DIGITS_HELD_OUT_FRACTION) -> ImageDataset:
  """scikit-learn's 1797 real 8×8 UCI handwritten digits (no download), pixels 0..16.

  Held out: a stratified 20% (:func:`stratified_split`, seed 0): 359 images (35 of the
  177 twos and of the 174 eights, 37 of the 183 threes, 36 of each other class);
  training 1438.
  Needs scikit-learn (``pip install 'ebm-gan[images]'``).
  """
  try:
    from sklearn.datasets import load_digits
  except ImportError as err:
    raise ImportError("digits() needs scikit-learn: pip install 'ebm-gan[images]'.") from err
  bunch = load_digits()
  images = bunch.images.astype(np.uint8)[..., None]  # [1797, 8, 8, 1], values 0..16
  labels = bunch.target.astype(np.int32)
  train, held = stratified_split(labels, held_out_fraction)
  return ImageDataset("digits", ImageArrays(images[train], labels[train]),
                      ImageArrays(images[held], labels[held]), base_classes=10, max_value=16)


def stacked_digits() -> ImageDataset:
  """Three independent digits as the 3 channels of an 8×8×3 image: 1000 modes (StackedMNIST in small)."""
  return stacked(digits())


def stacked4_digits() -> ImageDataset:
  """Four independent digits as the 4 channels of an 8×8×4 image: label 1000·d₁ + 100·d₂ +
  10·d₃ + d₄, 10 000 modes (the 4-stack StackedMNIST of MEG in small)."""
  return stacked(digits(), k=4)
