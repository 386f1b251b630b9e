"""The mode-counting classifier, trained once and cached on disk with orbax.

``load_or_train(name, images, labels, cache_dir=...)`` returns the parameters of an
``ebm_gan.classifier.DigitClassifier`` and its held-out accuracy. The first call splits the
labelled images (deterministic, stratified), trains on the training part, measures the
accuracy on the held-out part and writes ``<cache_dir>/<name>/``:

* ``params/``: the parameters (an orbax ``StandardCheckpointer`` save);
* ``classifier.json``: the held-out accuracy, the training settings and a SHA-256 of the
  images and labels.

The entry is written in a private folder and renamed into place, so concurrent runs (each
training it because none found it yet) never see or delete each other's half-written files;
the first complete entry stays, and a later writer of the same entry drops its own copy, so
that no run ever finds the entry gone once it was there (:func:`_install`).

A later call with the same settings and data restores them instead of training; a call
with other settings or other data trains again and replaces the cache.
"""

from __future__ import annotations

import dataclasses
import errno
import hashlib
import json
import os
import shutil
import tempfile

import jax
import numpy as np
import orbax.checkpoint as ocp

from ebm_gan import classifier
from ebm_gan.runner.registry import ConfigError

META = "classifier.json"
PARAMS = "params"


@dataclasses.dataclass(frozen=True)
class Settings:
  """How the classifier is trained: what the cache must match to be reused."""
  held_out_fraction: float = 0.2
  split_seed: int = 0
  seed: int = 0
  steps: int = 600
  batch_size: int = 64
  learning_rate: float = 1e-3
  num_classes: int = 10


def data_fingerprint(images: np.ndarray, labels: np.ndarray) -> str:
  """SHA-256 of the images' float32 bytes, their shape, and the labels' int64 bytes."""
  h = hashlib.sha256(str(images.shape).encode())
  h.update(np.ascontiguousarray(images, np.float32).tobytes())
  h.update(np.ascontiguousarray(labels, np.int64).tobytes())
  return h.hexdigest()


def _read_meta(folder: str) -> dict | None:
  try:
    with open(os.path.join(folder, META)) as f:
      return json.load(f)
  except (OSError, ValueError):
    return None


def _restore(folder: str, images: np.ndarray, num_classes: int):
  target = jax.eval_shape(classifier.DigitClassifier(num_classes).init,
                          jax.random.PRNGKey(0), images[:1])
  try:
    with ocp.StandardCheckpointer() as checkpointer:
      return checkpointer.restore(os.path.join(folder, PARAMS), target)
  except Exception as e:  # missing files, another architecture, garbage
    raise ConfigError(
        f"the cached classifier in {folder!r} cannot be read ({type(e).__name__}: "
        f"{' '.join(str(e).split())[:200]}). Delete that folder to train it again.") from None


def _train(images, labels, settings: Settings):
  train_idx, held_idx = classifier.stratified_split(labels, settings.held_out_fraction,
                                                    settings.split_seed)
  params = classifier.train_classifier(
      jax.random.PRNGKey(settings.seed), images[train_idx], labels[train_idx],
      settings.steps, settings.batch_size, settings.learning_rate, settings.num_classes)
  return params, classifier.accuracy(params, images[held_idx], labels[held_idx])


def _matches(cached: dict | None, meta: dict) -> bool:
  """Whether a cache entry's classifier.json ``cached`` has the ``meta`` asked for."""
  return cached is not None and {k: cached.get(k) for k in meta} == meta


def _save(folder: str, params, accuracy: float, meta: dict) -> None:
  """Writes the entry into a private folder beside ``folder``, then puts it in place
  (:func:`_install`); the private folder never outlives the call."""
  parent = os.path.dirname(folder)
  os.makedirs(parent, exist_ok=True)
  staging = tempfile.mkdtemp(prefix=f".{os.path.basename(folder)}.writing-", dir=parent)
  try:
    with ocp.StandardCheckpointer() as checkpointer:
      checkpointer.save(os.path.join(staging, PARAMS), params)
      checkpointer.wait_until_finished()
    with open(os.path.join(staging, META), "w") as f:
      json.dump({**meta, "held_out_accuracy": accuracy}, f, indent=1)
    _install(staging, folder, meta)
  finally:
    shutil.rmtree(staging, ignore_errors=True)


def _install(staging: str, folder: str, meta: dict, attempts: int = 3) -> None:
  """Renames the complete entry ``staging`` to ``folder``, unless an entry with the same
  ``meta`` is there already: then that one stays and ours is dropped.

  So readers see no entry, or a complete one, never a half-written one; and an entry, once in
  place, is never taken away by a run that would write the same one. Runs started together
  (each training the classifier because none found it) therefore leave the first complete
  entry in place: moving it aside to put an equal one in would leave, between the two renames,
  a moment without any entry, in which a third run finds none (and trains again) or fails to
  read the one it had just found. An entry of other settings or data is moved aside and
  deleted, then ours put in; if yet another writer's entry lands in between, the loop looks
  again (``attempts`` times, then leaves whatever complete entry is there).
  """
  for _ in range(attempts):
    try:
      os.rename(staging, folder)  # no entry there: ours is the entry
      return
    except OSError as e:
      if e.errno not in (errno.ENOTEMPTY, errno.EEXIST):
        raise
    if _matches(_read_meta(folder), meta):
      return  # an equal, complete entry (another run's) stays in place
    retired = f"{staging}.old"
    try:
      os.rename(folder, retired)  # an entry of other settings, out of the way
    except FileNotFoundError:
      pass
    shutil.rmtree(retired, ignore_errors=True)


def load_or_train(name: str, images, labels, cache_dir: str,
                  settings: Settings = Settings()) -> tuple[dict, float, bool]:
  """The classifier ``name`` for these images and labels: cached if it matches, else trained.

  Args:
    name: the cache entry's folder name (e.g. ``'digits'``).
    images: float images[N, H, W, 1] in [−1, 1]; labels: integer labels[N].
    cache_dir: the folder holding the cache entries (created if missing).
    settings: the training settings (:class:`Settings`).

  Returns:
    ``(params, held_out_accuracy, trained)``; ``trained`` is False when the cache was used.
  """
  images, labels = np.asarray(images, np.float32), np.asarray(labels, np.int64)
  folder = os.path.join(os.path.abspath(os.path.expanduser(cache_dir)), name)
  meta = {"name": name, "settings": dataclasses.asdict(settings),
          "data_sha256": data_fingerprint(images, labels)}
  cached = _read_meta(folder)
  if _matches(cached, meta):
    return (_restore(folder, images, settings.num_classes), cached["held_out_accuracy"],
            False)
  params, accuracy = _train(images, labels, settings)
  _save(folder, params, accuracy, meta)
  return params, accuracy, True
