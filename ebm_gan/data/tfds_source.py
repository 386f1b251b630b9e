"""MNIST, Fashion-MNIST, CIFAR-10 (and StackedMNIST) from prepared tensorflow-datasets folders.

Read with ``tfds.data_source(name, split, data_dir, download=False)`` — random access
to array_record files, no TensorFlow at train time — once, into numpy, when the
dataset is built; training then samples in memory (:class:`ebm_gan.data.images.ImageDataset`).
Nothing is downloaded here: the folders are prepared beforehand where the internet is
available (BUILD.md, "Datasets"), with :func:`prepare_command`. A folder without
the dataset raises :class:`DatasetNotPreparedError` naming the dataset, the folder
and that command. Needs ``pip install 'ebm-gan[tfds]'``.
"""

from __future__ import annotations

import glob
import json
import os

import numpy as np

from ebm_gan.data.images import ImageArrays, ImageDataset, stacked
from ebm_gan.errors import InvalidArgumentError, lookup

# name → (classes, largest pixel value); images are uint8 [28, 28, 1] or [32, 32, 3].
TFDS_IMAGE_DATASETS = {"mnist": (10, 255), "fashion_mnist": (10, 255), "cifar10": (10, 255)}


class DatasetNotPreparedError(InvalidArgumentError):
  """A tfds dataset that is not prepared (as array_record) in the folder given."""


def prepare_command(name: str, data_dir: str) -> str:
  """The shell command that prepares ``name`` as array_record under ``data_dir`` (needs the internet)."""
  return f"tfds build {name} --data_dir={data_dir} --file_format=array_record"


def _tfds():
  try:
    import tensorflow_datasets as tfds
  except ImportError as err:
    raise ImportError("the tfds image datasets need tensorflow-datasets: "
                      "pip install 'ebm-gan[tfds]'.") from err
  return tfds


def _read_split(tfds, name: str, split: str, data_dir: str) -> ImageArrays:
  """One split read once into uint8 images [N, H, W, C] and int32 labels [N]."""
  from google.protobuf import json_format  # pylint: disable=g-import-not-at-top  (with tfds)
  try:
    source = tfds.data_source(name, split=split, data_dir=data_dir, download=False)
  except json_format.ParseError as err:  # a damaged dataset_info.json: tfds gives a traceback
    raise DatasetNotPreparedError(
        f"dataset {name!r} is damaged in its prepared folder: {_damaged_info(name, data_dir)} "
        f"cannot be read. Rebuild it where the internet is available with "
        f"`{prepare_command(name, data_dir)}` (after removing {os.path.join(data_dir, name)}), "
        f"or point data_dir at an intact copy. tfds said: {_first_line(err)}") from err
  except (NotImplementedError, FileNotFoundError, OSError, AssertionError) as err:
    # tfds reports a missing dataset as "Random access data source for file format
    # TFRECORD is not supported" (a NotImplementedError); say what is missing instead.
    raise DatasetNotPreparedError(
        f"dataset {name!r} (split {split!r}) is not prepared in array_record format in "
        f"{os.path.join(data_dir, name)}. Prepare it where the internet is available with "
        f"`{prepare_command(name, data_dir)}` (needs tensorflow and tensorflow-datasets) "
        f"and point data_dir at that folder. tfds said: {_first_line(err)}") from err
  examples = [source[i] for i in range(len(source))]
  images = np.stack([np.asarray(e["image"], np.uint8) for e in examples])
  labels = np.asarray([e["label"] for e in examples], np.int32)
  return ImageArrays(images, labels)


def _first_line(err: BaseException) -> str:
  return (str(err).splitlines() or [type(err).__name__])[0]


def _damaged_info(name: str, data_dir: str) -> str:
  """The dataset_info.json files of ``name`` under ``data_dir`` that are not JSON (all of
  them if each is JSON but not a dataset's info), as text."""
  found = sorted(glob.glob(os.path.join(data_dir, name, "**", "dataset_info.json"),
                           recursive=True))
  bad = []
  for path in found:
    try:
      with open(path, encoding="utf-8") as f:
        json.load(f)
    except (OSError, ValueError):
      bad.append(path)
  shown = bad or found
  return ("dataset_info.json" if not shown else
          ", ".join(shown[:3]) + (f" (and {len(shown) - 3} more)" if len(shown) > 3 else ""))


def tfds_dataset(name: str, data_dir: str | None = None, train_split: str = "train",
                 held_out_split: str = "test") -> ImageDataset:
  """``name`` (mnist, fashion_mnist, cifar10) read from ``data_dir`` (None: tfds's default folder).

  Pixels 0..255 are scaled to [−1, 1] when sampled; held out is the dataset's own
  test split unless ``held_out_split`` says otherwise (any tfds split string).
  """
  classes, max_value = lookup(TFDS_IMAGE_DATASETS, name, "name", "tfds image dataset")
  tfds = _tfds()
  data_dir = os.fspath(data_dir) if data_dir is not None else \
      tfds.core.constants.get_default_data_dir()
  return ImageDataset(name, _read_split(tfds, name, train_split, data_dir),
                      _read_split(tfds, name, held_out_split, data_dir),
                      base_classes=classes, max_value=max_value)


def stacked_mnist(data_dir: str | None = None) -> ImageDataset:
  """StackedMNIST: three independent MNIST digits as the 3 channels (28×28×3, 1000 modes)."""
  return stacked(tfds_dataset("mnist", data_dir))

