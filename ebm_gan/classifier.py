"""A small conv digit classifier, trained by a pure function: the judge of mode counting.

The StackedMNIST protocol (docs/theory.md §10, :mod:`ebm_gan.modes`) labels each channel of a
generated sample with a classifier trained on the real single-digit images. This module is
that classifier: :class:`DigitClassifier` (a flax module), :func:`train_classifier`
(Adam on the cross-entropy), :func:`predict`, :func:`accuracy`, and
:func:`stratified_split` for a deterministic held-out set. It reads no files; the runner
caches the trained parameters (``ebm_gan.runner.programs.ebm_gan.classifiers``).
"""

from __future__ import annotations

import functools

import flax.linen as nn
import jax
import jax.numpy as jnp
import numpy as np
import optax

from ebm_gan.errors import InvalidArgumentError, check_positive

FEATURES = 128  # width of the penultimate layer: what :func:`features` returns per image


class DigitClassifier(nn.Module):
  """logits[B, classes] of images x[B, H, W, C] in [−1, 1].

  conv3×3(32) → ReLU → conv3×3 stride 2 (64) → ReLU → flatten → dense(128) → ReLU →
  dense(classes) (the layer named ``logits``). With ``features=True`` the call stops before
  the last layer and returns the 128 penultimate activations (:func:`features`); the
  parameters are the same either way.
  """
  num_classes: int = 10

  @nn.compact
  def __call__(self, x, features: bool = False):
    h = nn.relu(nn.Conv(32, (3, 3))(x))
    h = nn.relu(nn.Conv(64, (3, 3), strides=(2, 2))(h))
    h = nn.relu(nn.Dense(FEATURES)(h.reshape(h.shape[0], -1)))
    return h if features else nn.Dense(self.num_classes, name="logits")(h)


def _module(params) -> DigitClassifier:
  return DigitClassifier(params["params"]["logits"]["bias"].shape[0])


def cross_entropy(params, images: jax.Array, labels: jax.Array) -> jax.Array:
  """−(1/B) Σ_i log softmax(f(x_i))_{y_i}, the mean negative log-likelihood of the labels."""
  logits = _module(params).apply(params, images)
  return jnp.mean(optax.softmax_cross_entropy_with_integer_labels(logits, labels))


def _check_training_data(images, labels):
  if images.ndim != 4 or labels.shape != images.shape[:1]:
    raise InvalidArgumentError(
        f"images of shape {images.shape} and labels of shape {labels.shape} are not allowed; "
        "expected images[N, H, W, C] and integer labels[N].")


def train_classifier(key: jax.Array, images, labels, steps: int = 1000, batch_size: int = 128,
                     learning_rate: float = 1e-3, num_classes: int = 10):
  """Parameters of a :class:`DigitClassifier` fitted by Adam to minimise :func:`cross_entropy`.

  Each of ``steps`` steps takes a minibatch of ``batch_size`` examples drawn uniformly with
  replacement (from ``key``), one jitted step at a time; the result is a pure function of
  (key, images, labels, settings).

  Args:
    key: PRNG key (initialisation and minibatches).
    images: float images[N, H, W, C] in [−1, 1].
    labels: integer labels[N] in [0, num_classes).
  """
  images, labels = jnp.asarray(images, jnp.float32), jnp.asarray(labels, jnp.int32)
  _check_training_data(images, labels)
  check_positive(steps, "steps", integer=True)
  check_positive(batch_size, "batch_size", integer=True)
  check_positive(learning_rate, "learning_rate")
  check_positive(num_classes, "num_classes", integer=True)
  k_init, k_batches = jax.random.split(key)
  params = DigitClassifier(num_classes).init(k_init, images[:1])
  return _fit(params, images, labels, k_batches, steps, batch_size, learning_rate)


def _fit(params, images, labels, key, steps, batch_size, learning_rate):
  # A Python loop over one jitted step, not lax.scan: XLA:CPU runs convolutions inside a
  # loop body far slower (measured ~20x here; jax-ml/jax#12868).
  state = optax.adam(learning_rate).init(params)
  for k in jax.random.split(key, steps):
    params, state = _adam_step(params, state, images, labels, k, batch_size, learning_rate)
  return params


@functools.partial(jax.jit, static_argnums=(5, 6))
def _adam_step(params, state, images, labels, key, batch_size, learning_rate):
  idx = jax.random.randint(key, (batch_size,), 0, images.shape[0])
  grads = jax.grad(cross_entropy)(params, images[idx], labels[idx])
  updates, state = optax.adam(learning_rate).update(grads, state, params)
  return optax.apply_updates(params, updates), state


@jax.jit
def _argmax_logits(params, images):
  return jnp.argmax(_module(params).apply(params, images), axis=-1).astype(jnp.int32)


@jax.jit
def _penultimate(params, images):
  return _module(params).apply(params, images, features=True)


def _batched(fn, params, images, batch_size: int, empty: np.ndarray) -> np.ndarray:
  images = np.asarray(images, np.float32)
  out = [np.asarray(fn(params, images[i:i + batch_size]))
         for i in range(0, images.shape[0], batch_size)]
  return np.concatenate(out) if out else empty


def predict(params, images, batch_size: int = 2048) -> np.ndarray:
  """argmax_c f(x)_c: int32 labels[N] of images[N, H, W, C], in batches of ``batch_size``."""
  return _batched(_argmax_logits, params, images, batch_size, np.zeros((0,), np.int32))


def features(params, images, batch_size: int = 2048) -> np.ndarray:
  """float32 features[N, 128] of images[N, H, W, C]: the penultimate ReLU(dense(128))
  activations, in batches of ``batch_size``; what FD-digits compares (docs/theory.md (10.4))."""
  return _batched(_penultimate, params, images, batch_size, np.zeros((0, FEATURES), np.float32))


def accuracy(params, images, labels) -> float:
  """The fraction of images whose :func:`predict` label equals ``labels``."""
  return float(np.mean(predict(params, images) == np.asarray(labels)))


def stratified_split(labels, held_out_fraction: float = 0.2, seed: int = 0):
  """Deterministic (train_idx, held_out_idx): round(fraction·n_c) random examples of each class c.

  Within each class the order comes from ``numpy.random.default_rng(seed)``; both index
  arrays are sorted, disjoint and cover every example.
  """
  if not 0.0 < held_out_fraction < 1.0:
    raise InvalidArgumentError(f"held_out_fraction={held_out_fraction!r} is not allowed; "
                               "expected a number strictly between 0 and 1.")
  labels = np.asarray(labels)
  rng = np.random.default_rng(seed)
  held = []
  for c in np.unique(labels):
    members = rng.permutation(np.flatnonzero(labels == c))
    held.append(members[:int(round(held_out_fraction * members.size))])
  held = np.sort(np.concatenate(held))
  train = np.setdiff1d(np.arange(labels.size), held)
  return train, held
