"""The classifier cache under concurrent runs: two interpreters train and save the same entry at
once while a third looks at it; both finish, the entry is whole and loads, and once it is in
place no look ever finds it missing or unreadable."""

import json
import os
import subprocess
import sys
import time

import numpy as np
import pytest

from ebm_gan import classifier
from ebm_gan.runner.programs.ebm_gan import classifiers
from tiny_runs import ROOT

sklearn_datasets = pytest.importorskip("sklearn.datasets")

SETTINGS = dict(steps=3, batch_size=32)  # a few steps: the test is about the files, not accuracy

# One writer: loads the digits, and trains the classifier because the cache is empty; then it
# waits for the other writer at a barrier (a file each in BARRIER) so that both save at once,
# and saves ROUNDS times in a row (every save after the first is a writer arriving late).
WRITER = """
import json, os, sys, time
import numpy as np
from sklearn import datasets
from ebm_gan.runner.programs.ebm_gan import classifiers
cache, barrier, me, rounds, settings = sys.argv[1:6]
d = datasets.load_digits()
images, labels = (d.images / 8.0 - 1.0).astype(np.float32)[..., None], d.target
real_save = classifiers._save

def save_together(folder, *args):
  open(os.path.join(barrier, me), "w").close()
  deadline = time.time() + 300
  while len(os.listdir(barrier)) < 2 and time.time() < deadline:
    time.sleep(0.001)
  for _ in range(int(rounds)):
    real_save(folder, *args)
classifiers._save = save_together
_, accuracy, trained = classifiers.load_or_train(
    "digits", images, labels, cache, classifiers.Settings(**json.loads(settings)))
print(json.dumps({"trained": trained, "accuracy": accuracy}))
"""


def _digits():
  d = sklearn_datasets.load_digits()
  return (d.images / 8.0 - 1.0).astype(np.float32)[..., None], d.target


def _watch(folder, barrier, writers, timeout=600):
  """Polls the entry's classifier.json until every writer has exited (without pause once both
  are at the barrier): the number of looks, and of looks that found no readable entry after one
  had been seen (a gap)."""
  looks, gaps, seen = 0, 0, False
  deadline = time.time() + timeout
  while any(w.poll() is None for w in writers) and time.time() < deadline:
    if len(os.listdir(barrier)) < 2:
      time.sleep(0.01)  # still training
      continue
    meta = classifiers._read_meta(folder)  # pylint: disable=protected-access
    looks += 1
    if meta is not None:
      seen = True
    elif seen:
      gaps += 1
  return looks, gaps


@pytest.mark.slow  # two interpreters each import jax and compile the classifier's step: ~13 s
def test_two_runs_saving_the_same_entry_at_once_leave_it_whole(tmp_path):
  """Each writer saves 20 times once both have trained. Measured before the fix (a writer of
  an equal entry moved the one in place aside, then renamed its own in): 7 of 91 736 looks
  found no entry after one was there; after it, 0, and every later save keeps the entry."""
  cache, barrier = tmp_path / "cache", tmp_path / "barrier"
  barrier.mkdir()
  writers = [subprocess.Popen(
      [sys.executable, "-c", WRITER, str(cache), str(barrier), name, "20", json.dumps(SETTINGS)],
      cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
      for name in ("a", "b")]
  looks, gaps = _watch(str(cache / "digits"), str(barrier), writers)
  outputs = [w.communicate(timeout=60) for w in writers]
  for w, (out, err) in zip(writers, outputs):
    assert w.returncode == 0, err[-2000:]
  reports = [json.loads(out.strip().splitlines()[-1]) for out, _ in outputs]
  assert all(r["trained"] for r in reports)  # both found the cache empty and trained
  assert reports[0]["accuracy"] == reports[1]["accuracy"]  # the same deterministic training
  # Once an entry was in place, the third process never found it missing or half there.
  assert looks > 100 and gaps == 0, (looks, gaps)
  assert sorted(os.listdir(cache)) == ["digits"]  # no staging or retired folder left
  assert sorted(os.listdir(cache / "digits")) == ["classifier.json", "params"]
  images, labels = _digits()
  settings = classifiers.Settings(**SETTINGS)
  params, accuracy, trained = classifiers.load_or_train("digits", images, labels, str(cache),
                                                       settings)
  assert not trained and accuracy == reports[0]["accuracy"]
  _, held = classifier.stratified_split(labels, settings.held_out_fraction, settings.split_seed)
  assert classifier.accuracy(params, images[held], labels[held]) == pytest.approx(accuracy)
