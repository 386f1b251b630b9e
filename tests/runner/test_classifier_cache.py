"""The runner's orbax cache of the digit classifier (ebm_gan/runner/programs/ebm_gan/classifiers.py)."""

import os

import jax
import numpy as np
import pytest

from ebm_gan import classifier
from ebm_gan.runner.programs.ebm_gan import classifiers

sklearn_datasets = pytest.importorskip("sklearn.datasets")


@pytest.fixture(scope="module")
def digits():
  """The 1797 real digits, pixel values 0..16 scaled to [−1, 1], as images[N, 8, 8, 1]."""
  d = sklearn_datasets.load_digits()
  return (d.images / 8.0 - 1.0).astype(np.float32)[..., None], d.target


def test_classifier_cache(digits, tmp_path, monkeypatch):
  """The first call trains and saves; the second restores the same parameters without training."""
  images, labels = digits
  settings = classifiers.Settings(steps=20)
  params, acc, trained = classifiers.load_or_train("digits", images, labels, str(tmp_path), settings)
  assert trained and (tmp_path / "digits" / "classifier.json").exists()

  def refuse(*args, **kwargs):
    raise AssertionError("retrained although the cache matches")
  monkeypatch.setattr(classifier, "train_classifier", refuse)
  params2, acc2, trained2 = classifiers.load_or_train("digits", images, labels, str(tmp_path),
                                                      settings)
  assert not trained2 and acc2 == acc
  np.testing.assert_array_equal(classifier.predict(params2, images),
                                classifier.predict(params, images))
  # Other settings do not match the cache: it trains again.
  with pytest.raises(AssertionError, match="retrained"):
    classifiers.load_or_train("digits", images, labels, str(tmp_path),
                              classifiers.Settings(steps=21))


def _entry_is_complete(folder, images, params):
  meta = classifiers._read_meta(folder)
  restored = classifiers._restore(folder, images, 10)
  for a, b in zip(jax.tree.leaves(restored), jax.tree.leaves(params)):
    np.testing.assert_array_equal(a, b)
  return meta


@pytest.mark.slow  # four orbax saves and three restores: 43 s at load ~5
def test_cache_writes_never_expose_or_delete_a_half_written_entry(tmp_path, monkeypatch):
  """Runs started together each train the classifier and save it. (1) While an entry of other
  settings is being written, the folder still holds the previous complete one, which it then
  replaces; (2) an entry of the same settings already in place stays (ours is dropped), and so
  does another writer's equal entry landing between our write and our rename; no staging
  folder is left either way."""
  images = np.zeros((2, 8, 8, 1), np.float32)
  old = classifier.DigitClassifier(10).init(jax.random.PRNGKey(0), images)
  new = classifier.DigitClassifier(10).init(jax.random.PRNGKey(1), images)
  folder = str(tmp_path / "digits")
  classifiers._save(folder, old, 0.5, {"name": "digits", "steps": 1})
  seen_during_write = []
  real_save = classifiers.ocp.StandardCheckpointer.save

  def save_and_look(self, *args, **kwargs):
    seen_during_write.append(_entry_is_complete(folder, images, old)["held_out_accuracy"])
    return real_save(self, *args, **kwargs)
  monkeypatch.setattr(classifiers.ocp.StandardCheckpointer, "save", save_and_look)
  classifiers._save(folder, new, 0.75, {"name": "digits", "steps": 2})
  assert seen_during_write == [0.5]  # the old entry, whole, while the new one was written
  monkeypatch.setattr(classifiers.ocp.StandardCheckpointer, "save", real_save)
  assert _entry_is_complete(folder, images, new)["held_out_accuracy"] == 0.75
  classifiers._save(folder, old, 0.6, {"name": "digits", "steps": 2})  # equal settings: kept
  assert _entry_is_complete(folder, images, new)["held_out_accuracy"] == 0.75

  real_rename, rivals = os.rename, []

  def rival_lands_first(src, dst):
    if dst == folder and not src.endswith(".old") and not rivals:
      rivals.append(src)
      classifiers._save(folder, old, 0.25, {"name": "digits", "steps": 3})  # the rival's save
    return real_rename(src, dst)
  monkeypatch.setattr(classifiers.os, "rename", rival_lands_first)
  classifiers._save(folder, new, 0.9, {"name": "digits", "steps": 3})
  monkeypatch.setattr(classifiers.os, "rename", real_rename)
  assert len(rivals) == 1
  assert _entry_is_complete(folder, images, old)["held_out_accuracy"] == 0.25
  assert sorted(os.listdir(tmp_path)) == ["digits"]
