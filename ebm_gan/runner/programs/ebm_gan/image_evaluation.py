"""The 'ebm_gan' program's summary metrics on image datasets (numbers from ebm_gan.metrics/modes).

  mmd2                      unbiased MMD² (median-heuristic RBF on the flattened pixels,
                            docs/theory.md (9.1)) between eval_samples generator samples and
                            up to eval_samples images of the HELD-OUT split (a fixed subset)
  modes_covered, mode_kl    stacked datasets only: the StackedMNIST protocol (docs/theory.md
                            §10) on evaluation.mode_samples generator samples (26 000 by
                            default): each channel labelled by a digit classifier, the mode
                            100·d₁ + 10·d₂ + d₃ (Σ_c 10^(C−1−c)·d_c for C channels); modes
                            with ≥ 1 sample of num_modes = 10^C (1000; 10 000 for
                            stacked4_digits) and KL(mode histogram ‖ uniform)
  classifier_accuracy       that classifier's accuracy on the held-out part (20%) of the base
                            dataset's training split it was trained on, and
  classifier_test_accuracy  on the base dataset's own held-out (test) split
  fd_digits                 stacked datasets only: FD-digits, the Fréchet distance (docs/theory.md
                            (10.4)) between Gaussians fitted to that classifier's features (128
                            per channel: 384 per sample of 3, 512 of 4) of the same
                            mode_samples generator samples and of the HELD-OUT stacked
                            images (all of them: fd_heldout_samples, 359 for the stacked
                            digits, 10 000 for stacked_mnist)
  fd_digits_floor           the same for mode_samples TRAINING stacks drawn as the run's batches
                            are, against the same held-out images: what a generator equal to
                            the data would score at this sample size (FD's finite-n bias)
  fd_s, fd_floor_s          seconds for fd_digits (features and FD), and for the held-out
                            features and the floor (once per run)

The classifier is trained once per base dataset and cached with orbax under
``evaluation.classifier_cache`` (:mod:`ebm_gan.runner.programs.ebm_gan.classifiers`), not in the run folder,
so every run and sweep member shares it.
"""

from __future__ import annotations

import functools
import time

import jax
import numpy as np

from ebm_gan import classifier
from ebm_gan import frechet
from ebm_gan import metrics
from ebm_gan import modes
from ebm_gan.runner.programs.ebm_gan import classifiers
from ebm_gan.runner.programs.ebm_gan import config as config_lib
from ebm_gan.runner.programs.ebm_gan import runner_fields

MODES_STREAM = 2**31 - 3  # the mode-counting samples' key: PRNGKey(seed) folded with this
FLOOR_STREAM = 2**31 - 4  # the FD-digits floor's training stacks: the same, folded with this
MODE_BATCH = 1000         # generator samples per jitted call while counting modes


class HeldOutMMD:
  """MMD² of generator samples against a fixed subset of the held-out images."""

  def __init__(self, exp):
    images, _ = exp.dataset.held_out()
    n = min(exp.config.eval_samples, len(images))
    keep = np.sort(np.random.default_rng(0).permutation(len(images))[:n])
    self.heldout = images[keep]

  def __call__(self, samples: np.ndarray, energy=None) -> dict:
    """``{'mmd2': MMD²_u(samples, held-out)}`` ({} if a sample is not finite)."""
    if not np.all(np.isfinite(samples)):
      return {}
    return {"mmd2": metrics.mmd2(samples, self.heldout)}


class ModeCounter:
  """The mode-counting protocol of a stacked dataset, for generator parameters.

  Args:
    exp: the built experiment (its dataset has ``stack`` > 1).
    sample: ``sample(params, key) -> x[MODE_BATCH, H, W, C]``, jitted.
  """

  def __init__(self, exp, sample):
    c, ds = exp.config, exp.dataset
    self.base = ds.base()
    self.num_samples = c.evaluation.mode_samples
    self.cache_dir = runner_fields.classifier_cache_dir(c)
    self.sample = sample
    self.key = jax.random.fold_in(jax.random.PRNGKey(c.seed), MODES_STREAM)
    self.fd = DigitsFD(exp, self.num_samples)
    self._classifier = None  # (params, info), trained or restored on first use

  def classifier(self) -> tuple[dict, dict]:
    """The digit classifier's parameters and its accuracies (trained once, then cached)."""
    if self._classifier is None:
      start = time.perf_counter()
      images, labels = self.base.training_set()
      params, accuracy, trained = classifiers.load_or_train(self.base.name, images, labels,
                                                            self.cache_dir)
      test = classifier.accuracy(params, *self.base.held_out())
      self._classifier = params, {
          "classifier_accuracy": float(accuracy), "classifier_test_accuracy": test,
          "classifier_trained": bool(trained),
          "classifier_s": round(time.perf_counter() - start, 3)}
    return self._classifier

  def __call__(self, params) -> dict:
    """modes_covered, num_modes, mode_kl, num_samples of ``mode_samples`` generator samples,
    the classifier's accuracies, ``modes_s`` (sampling and classifying), and the same
    samples' FD-digits and its floor (:class:`DigitsFD`)."""
    digit_params, info = self.classifier()
    start = time.perf_counter()
    x = draw(functools.partial(self.sample, params), self.key, self.num_samples)
    if not np.all(np.isfinite(x)):
      return dict(info)
    found = modes.stacked_mode_metrics(functools.partial(classifier.predict, digit_params), x)
    found["mode_samples"] = found.pop("num_samples")
    found["modes_s"] = round(time.perf_counter() - start, 3)
    return {**found, **info, **self.fd(digit_params, x)}


def draw(sample, key: jax.Array, n: int) -> np.ndarray:
  """n samples from ``sample(key) -> x[MODE_BATCH, ...]``, batch i drawn with fold_in(key, i)."""
  batches = -(-n // MODE_BATCH)
  return np.concatenate([np.asarray(sample(jax.random.fold_in(key, i)))
                         for i in range(batches)])[:n]


class DigitsFD:
  """FD-digits of generator samples against the held-out stacked images, and its floor.

  The held-out images' feature moments and the floor (the FD of ``num_samples`` training
  stacks, drawn as the run's batches are, against them) depend only on the classifier and
  the data: they are computed on first use and kept (docs/theory.md (10.4)).
  """

  def __init__(self, exp, num_samples: int):
    self.dataset = exp.dataset
    self.num_samples = num_samples
    self.key = jax.random.fold_in(jax.random.PRNGKey(exp.config.seed), FLOOR_STREAM)
    self._reference = None  # (held-out moments, info)

  def _features(self, digit_params, images) -> np.ndarray:
    return modes.channel_features(functools.partial(classifier.features, digit_params), images)

  def reference(self, digit_params) -> tuple[tuple, dict]:
    """The held-out features' (mean, cov), and fd_digits_floor, fd_heldout_samples, fd_floor_s."""
    if self._reference is None:
      start = time.perf_counter()
      heldout = self._features(digit_params, self.dataset.held_out()[0])
      moments = frechet.gaussian_moments(heldout)
      sample = jax.jit(lambda key, arrays: self.dataset.sampler(arrays)(key, MODE_BATCH))
      arrays = self.dataset.arrays()
      train = draw(lambda key: sample(key, arrays), self.key, self.num_samples)
      floor = frechet.frechet_distance(
          *frechet.gaussian_moments(self._features(digit_params, train)), *moments)
      self._reference = moments, {
          "fd_digits_floor": floor, "fd_heldout_samples": int(heldout.shape[0]),
          "fd_floor_s": round(time.perf_counter() - start, 3)}
    return self._reference

  def __call__(self, digit_params, samples: np.ndarray) -> dict:
    """``fd_digits`` of samples[N, H, W, C] (finite), the floor's keys, and ``fd_s``; without
    ``fd_digits`` when the samples' features overflow (pixels near float32's largest)."""
    moments, info = self.reference(digit_params)
    start = time.perf_counter()
    features = self._features(digit_params, samples)
    if not np.all(np.isfinite(features)):
      return dict(info)
    fd = frechet.frechet_distance(*frechet.gaussian_moments(features), *moments)
    return {"fd_digits": fd, **info, "fd_s": round(time.perf_counter() - start, 3)}


def is_stacked(dataset) -> bool:
  """Whether ``dataset`` is a stacked image dataset (mode counting applies)."""
  return config_lib.is_image(dataset) and dataset.stack > 1
