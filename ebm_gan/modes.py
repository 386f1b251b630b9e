"""Mode counting on stacked digits: the StackedMNIST protocol (docs/theory.md §10).

A stacked sample x[H, W, 3] holds one digit per channel; a classifier trained on single
real digits labels each channel, and the sample's mode is m = 100·d₁ + 10·d₂ + d₃ ∈
{0, …, 999}. From N generator samples (26 000 in Metz et al. 2017, VEEGAN, PacGAN and MEG)
the protocol reports the number of modes that received at least one sample, and the KL
divergence of the empirical mode histogram from the uniform distribution over the 1000
modes (docs/theory.md (10.2)–(10.3)). C channels give m = Σ_c 10^(C−1−c)·d_c over 10^C modes
(MEG's 4-stack: 10 000).

The functions take labels or a ``classify(images[N, H, W, 1]) -> labels[N]`` callable (e.g.
``functools.partial(ebm_gan.classifier.predict, params)``), so the protocol is independent
of the classifier. :func:`channel_features` likewise gives each stacked sample the
classifier's features of its three digits, for FD-digits (:mod:`ebm_gan.frechet`).
"""

from __future__ import annotations

from typing import Callable

import numpy as np

from ebm_gan.errors import InvalidArgumentError, check_positive

# The protocol's sample count (Metz et al. 2017's 25 600 rounded up; VEEGAN, PacGAN, MEG).
DEFAULT_SAMPLES = 26_000


def stacked_labels(digits) -> np.ndarray:
  """m = Σ_c 10^{C−1−c} d_c of per-channel digits[N, C]: 100·d₁ + 10·d₂ + d₃ for C = 3."""
  digits = np.asarray(digits)
  if digits.ndim != 2 or np.any((digits < 0) | (digits > 9)):
    raise InvalidArgumentError(f"digits of shape {digits.shape} are not allowed; expected "
                               "digits[N, C] with every entry in 0..9.")
  weights = 10 ** np.arange(digits.shape[1] - 1, -1, -1)
  return (digits.astype(np.int64) * weights).sum(axis=1)


def _per_channel(fn: Callable, samples) -> list[np.ndarray]:
  """[fn(samples[..., c:c+1]) for each channel c] of samples[N, H, W, C]."""
  samples = np.asarray(samples)
  if samples.ndim != 4:
    raise InvalidArgumentError(f"samples of shape {samples.shape} are not allowed; expected "
                               "images samples[N, H, W, C].")
  return [np.asarray(fn(samples[..., c:c + 1])) for c in range(samples.shape[-1])]


def classify_channels(classify: Callable, samples) -> np.ndarray:
  """digits[N, C]: ``classify`` applied to each channel of samples[N, H, W, C] as [N, H, W, 1]."""
  return np.stack(_per_channel(classify, samples), axis=1)


def channel_features(features: Callable, samples) -> np.ndarray:
  """features[N, C·F]: ``features(images[N, H, W, 1]) -> [N, F]`` of each channel of
  samples[N, H, W, C] as a single digit image, the C channels' features side by side
  (channel 0 first): [N, 384] for stacked digits and the classifier's 128 features
  (``functools.partial(ebm_gan.classifier.features, params)``), which FD-digits compares
  (docs/theory.md (10.4))."""
  return np.concatenate(_per_channel(features, samples), axis=1)


def mode_histogram_metrics(labels, num_modes: int = 1000, min_count: int = 1) -> dict:
  """Modes covered and KL(histogram ‖ uniform) of integer mode labels[N] in [0, num_modes).

  With n_k the number of labels equal to k and p̂_k = n_k / N (docs/theory.md (10.2)–(10.3)):

  .. math::  \\text{covered} = \\#\\{k : n_k ≥ \\text{min\\_count}\\},\\qquad
             KL(p̂ ‖ U) = Σ_{k: n_k > 0} p̂_k \\log(K p̂_k),\\quad K = \\text{num\\_modes}.

  KL is 0 for a perfectly balanced histogram and log K when every sample has one mode.
  ``min_count`` = 1 is the protocol's count, as ``modes_covered`` of
  :func:`ebm_gan.metrics.mode_metrics` on the 2-D mixtures (MEG's StackedMNIST evaluation,
  ritheshkumar95/energy_based_generative_models ``evals.py``, counts modes with a count > 0).

  Returns:
    ``{'modes_covered', 'num_modes', 'mode_kl', 'num_samples'}``.
  """
  check_positive(num_modes, "num_modes", integer=True)
  check_positive(min_count, "min_count", integer=True)
  labels = np.asarray(labels)
  if labels.ndim != 1 or labels.size == 0 or np.any((labels < 0) | (labels >= num_modes)):
    raise InvalidArgumentError(f"labels of shape {labels.shape} are not allowed; expected a "
                               f"non-empty labels[N] with every entry in 0..{num_modes - 1}.")
  counts = np.bincount(labels.astype(np.int64), minlength=num_modes)
  p = counts[counts > 0] / labels.size
  return {"modes_covered": int(np.sum(counts >= min_count)), "num_modes": int(num_modes),
          "mode_kl": float(np.sum(p * np.log(num_modes * p))), "num_samples": int(labels.size)}


def stacked_mode_metrics(classify: Callable, samples, min_count: int = 1) -> dict:
  """The StackedMNIST metrics of samples[N, H, W, C]: :func:`mode_histogram_metrics` of the
  :func:`stacked_labels` of :func:`classify_channels` over the 10^C modes (1000 for C = 3, 10 000 for C = 4)."""
  digits = classify_channels(classify, samples)
  return mode_histogram_metrics(stacked_labels(digits), 10 ** digits.shape[1], min_count)
