"""A tfds dataset PREPARED as array_record files, offline, then read back by the real loader.

test_image_data.py reads the loaders under ``tfds.testing.mock_data``, which serves examples
without any file. Here tfds's own writer prepares small fake MNIST and CIFAR-10 folders
(``download_and_prepare(file_format='array_record')``: dataset_info.json, features.json, the
array_record shards) in a temporary ``data_dir``; ``ebm_gan.data.tfds_source`` and the runner's
``data.dir`` then read them with ``tfds.data_source(..., download=False)`` like a folder made
by ``tfds build``.

The fake builders are the registered MNIST and CIFAR-10 builders (their features, version and
file names) with a generator of our images in place of the download. Images are handed to tfds
as PNG bytes encoded with Pillow: tfds encodes a numpy image with ``tf.image.encode_png``,
which needs TensorFlow, and this test must run with tensorflow-datasets alone (TensorFlow is
not installed here). The real ``tfds build mnist`` needs TensorFlow for the same reason and to
read the downloaded files (BUILD.md, Datasets).
"""

import io
import os

import numpy as np
import pytest

from ebm_gan import data
from ebm_gan.runner import cli
from tiny_runs import CONFIGS, ROOT

tfds = pytest.importorskip("tensorflow_datasets")
Image = pytest.importorskip("PIL.Image")
pytest.importorskip("array_record")


def _png(image: np.ndarray) -> bytes:
  """Lossless PNG bytes of a uint8 image [H, W, C] (C = 1: grey, 3: RGB)."""
  out = io.BytesIO()
  Image.fromarray(image[..., 0] if image.shape[-1] == 1 else image).save(out, format="PNG")
  return out.getvalue()


def _fake_builder(name: str):
  """The registered builder ``name`` generating the given splits instead of downloading."""
  class Fake(tfds.builder_cls(name), skip_registration=True):  # pylint: disable=abstract-method
    """``name``'s features, version and files; examples from ``splits``."""

    def __init__(self, splits, **kwargs):
      self._splits = splits
      super().__init__(**kwargs)

    def _split_generators(self, dl_manager):
      del dl_manager  # nothing is downloaded
      return {split: self._generate_examples(split) for split in self._splits}

    def _generate_examples(self, split):  # pylint: disable=arguments-differ
      images, labels = self._splits[split]
      for i, (image, label) in enumerate(zip(images, labels)):
        example = {"image": _png(image), "label": int(label)}
        if name == "cifar10":
          example["id"] = f"{split}_{i:05d}"
        yield i, example

  Fake.name = name
  return Fake


def _random_split(rng, n, shape):
  images = rng.integers(0, 256, (n, *shape), dtype=np.uint8)
  images[0] = 0      # the extreme pixels, exactly
  images[1] = 255
  return images, rng.integers(0, 10, n).astype(np.int64)


def _prepare(name, shape, data_dir, sizes=(40, 16)):
  """Writes ``name`` with random images into ``data_dir`` as array_record; returns its splits."""
  rng = np.random.default_rng(len(name))
  splits = {"train": _random_split(rng, sizes[0], shape), "test": _random_split(rng, sizes[1], shape)}
  builder = _fake_builder(name)(splits, data_dir=str(data_dir))
  builder.download_and_prepare(file_format="array_record")
  return splits


def _as_set(images, labels):
  """The (image bytes, label) pairs: tfds writes the examples in an order of its own."""
  return sorted((np.asarray(i, np.uint8).tobytes(), int(l)) for i, l in zip(images, labels))


@pytest.mark.parametrize("name, shape", [("mnist", (28, 28, 1)), ("cifar10", (32, 32, 3))])
def test_a_prepared_array_record_folder_reads_back_through_the_loader(name, shape, tmp_path):
  splits = _prepare(name, shape, tmp_path)
  version = str(tfds.builder_cls(name).VERSION)
  files = sorted(os.listdir(tmp_path / name / version))
  assert f"{name}-train.array_record-00000-of-00001" in files, files
  assert "dataset_info.json" in files and "features.json" in files
  ds = data.tfds_dataset(name, tmp_path)  # tfds.data_source(download=False), no mock
  assert ds.shape == shape and ds.num_classes == 10 and ds.max_value == 255
  for ours, split in ((ds.train, "train"), (ds.test, "test")):
    assert ours.images.dtype == np.uint8 and ours.labels.dtype == np.int32
    assert _as_set(ours.images, ours.labels) == _as_set(*splits[split])  # exact, lossless PNG
  held_x, held_y = ds.held_out()  # pixels 0..255 → [-1, 1] as k·2/255 − 1, in the test split's order
  assert held_x.min() == -1.0 and held_x.max() == 1.0
  np.testing.assert_array_equal(np.rint((held_x + 1) * 127.5).astype(np.uint8), ds.test.images)
  np.testing.assert_array_equal(held_y, ds.test.labels)


def test_the_runner_reads_the_prepared_folder_through_data_dir(tmp_path):
  """mnist.py and stacked_mnist.py with --config.data.dir: the launcher's dataset is the
  prepared one, and each channel of a stacked sample is one of its training digits, the
  sample's label 100·d₁ + 10·d₂ + d₃ of theirs."""
  import jax  # pylint: disable=g-import-not-at-top
  splits = _prepare("mnist", (28, 28, 1), tmp_path)
  path = os.path.join(CONFIGS, "mnist.py")
  ds = cli.build(path, cli.resolve_config(path, [("data.dir", str(tmp_path))]))[1].dataset
  assert _as_set(ds.train.images, ds.train.labels) == _as_set(*splits["train"])
  assert _as_set(ds.test.images, ds.test.labels) == _as_set(*splits["test"])
  path = os.path.join(CONFIGS, "stacked_mnist.py")
  ds = cli.build(path, cli.resolve_config(path, [("data.dir", str(tmp_path))]))[1].dataset
  assert ds.shape == (28, 28, 3) and ds.num_classes == 1000
  digit = dict(_as_set(*splits["train"]))
  x, y = ds.sample_with_labels(jax.random.key(0), 16)
  pixels = np.rint((np.asarray(x) + 1) * 127.5).astype(np.uint8)
  for image, label in zip(pixels, np.asarray(y)):
    d = [digit[np.ascontiguousarray(image[..., c]).tobytes()] for c in range(3)]
    assert label == 100 * d[0] + 10 * d[1] + d[2]
