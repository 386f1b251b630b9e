"""Datasets: jittable 2-D toy samplers (:mod:`ebm_gan.data.toy`) and image datasets.

Image datasets (:mod:`ebm_gan.data.images`, :mod:`ebm_gan.data.tfds_source`) are
:class:`~ebm_gan.data.images.ImageDataset` s, made by name with :func:`image_dataset`:
``digits``, ``stacked_digits`` and ``stacked4_digits`` (scikit-learn, offline), ``mnist``,
``fashion_mnist``, ``cifar10`` and ``stacked_mnist`` (prepared tensorflow-datasets
folders under ``data_dir``).
"""
from ebm_gan.data import images, toy, tfds_source
from ebm_gan.data.images import (ImageArrays, ImageDataset, digits, stacked, stacked4_digits,
                                 stacked_digits)
from ebm_gan.data.tfds_source import DatasetNotPreparedError, stacked_mnist, tfds_dataset
from ebm_gan.errors import lookup as _lookup

# name → factory(data_dir); the offline datasets ignore data_dir.
IMAGE_DATASETS = {
    "digits": lambda data_dir=None: digits(),
    "stacked_digits": lambda data_dir=None: stacked_digits(),
    "stacked4_digits": lambda data_dir=None: stacked4_digits(),
    "mnist": lambda data_dir=None: tfds_dataset("mnist", data_dir),
    "fashion_mnist": lambda data_dir=None: tfds_dataset("fashion_mnist", data_dir),
    "cifar10": lambda data_dir=None: tfds_dataset("cifar10", data_dir),
    "stacked_mnist": stacked_mnist,
}


def image_dataset(name: str, data_dir: str | None = None) -> ImageDataset:
  """``IMAGE_DATASETS[name](data_dir)``, or InvalidArgumentError naming the allowed names."""
  return _lookup(IMAGE_DATASETS, name, "dataset", "image dataset")(data_dir)
