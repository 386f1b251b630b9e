"""Image datasets: the digits split, jittable (stacked) sampling, tfds loaders under mock_data."""

import functools

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from ebm_gan import data, train
from ebm_gan.errors import InvalidArgumentError

tfds = pytest.importorskip("tensorflow_datasets")


@functools.lru_cache(maxsize=None)
def _digits():
  return data.digits()


def _pixels(ds, x):
  """[-1, 1] floats back to the integer pixels 0..max_value (exact: they are k·2/max − 1)."""
  return np.rint((np.asarray(x) + 1) * ds.max_value / 2).astype(np.int64)


def _label_of_image(split):
  return {img.tobytes(): int(lab) for img, lab in zip(split.images.astype(np.int64), split.labels)}


def test_digits_split_is_stratified_disjoint_and_complete():
  ds = _digits()
  counts = np.bincount(np.concatenate([ds.train.labels, ds.test.labels]), minlength=10)
  held = np.bincount(ds.test.labels, minlength=10)
  assert counts.sum() == 1797 and len(ds.test.labels) == 359 and len(ds.train.labels) == 1438
  np.testing.assert_array_equal(held, np.round(0.2 * counts))  # round(0.2·n_c) per class
  train_images = {img.tobytes() for img in ds.train.images}
  assert not any(img.tobytes() in train_images for img in ds.test.images)  # no image in both
  tr, te = data.images.stratified_split(np.concatenate([ds.train.labels, ds.test.labels]), 0.2)
  assert np.intersect1d(tr, te).size == 0 and len(tr) + len(te) == 1797
  with pytest.raises(InvalidArgumentError, match="held_out_fraction=1.5"):
    data.images.stratified_split(ds.train.labels, 1.5)


def test_digits_sample_shapes_range_and_key_determinism():
  ds = _digits()
  assert ds.shape == (8, 8, 1) and ds.num_classes == 10 and ds.name == "digits"
  x, y = jax.jit(ds.sample_with_labels, static_argnums=1)(jax.random.key(0), 512)
  assert x.shape == (512, 8, 8, 1) and x.dtype == jnp.float32 and y.dtype == jnp.int32
  assert float(x.min()) == -1.0 and float(x.max()) == 1.0  # pixels 0 and 16 both occur
  sample = jax.jit(ds.sample, static_argnums=1)
  np.testing.assert_array_equal(x, sample(jax.random.key(0), 512))  # same draw, same key
  assert not np.array_equal(x, sample(jax.random.key(1), 512))
  lookup = _label_of_image(ds.train)  # every sample is a training image with its own label
  assert all(lookup[img.tobytes()] == lab for img, lab in zip(_pixels(ds, x), np.asarray(y)))
  held_x, held_y = ds.held_out()
  assert held_x.shape == (359, 8, 8, 1) and held_x.dtype == np.float32
  assert -1.0 <= held_x.min() and held_x.max() <= 1.0 and held_y.shape == (359,)


STACKS = {  # name: (k, the label of channel digits d, written out)
    "stacked_digits": (3, lambda d: 100 * d[0] + 10 * d[1] + d[2]),
    "stacked4_digits": (4, lambda d: 1000 * d[0] + 100 * d[1] + 10 * d[2] + d[3]),
}


@pytest.mark.parametrize("name", sorted(STACKS))
def test_stacked_labels_are_the_channels_digits(name):
  k, label = STACKS[name]
  ds = data.image_dataset(name)
  assert ds.shape == (8, 8, k) and ds.num_classes == 10 ** k and ds.name == name
  assert ds.base().name == "digits" and ds.base().shape == (8, 8, 1)
  x, y = ds.sample_with_labels(jax.random.key(3), 256)
  lookup = _label_of_image(ds.train)
  pix = _pixels(ds, x)
  for img, lab in zip(pix, np.asarray(y)):
    assert lab == label([lookup[np.ascontiguousarray(img[..., j:j + 1]).tobytes()]
                         for j in range(k)])
  held_x, held_y = ds.held_out()
  assert held_x.shape == (359, 8, 8, k)
  test_lookup = _label_of_image(ds.test)
  for img, lab in zip(_pixels(ds, held_x), held_y):
    assert lab == label([test_lookup[np.ascontiguousarray(img[..., j:j + 1]).tobytes()]
                         for j in range(k)])


def test_stacked_label_frequencies_match_the_product_of_digit_frequencies():
  # Channels are independent uniform draws from the training split, so P(label = abc) =
  # f_a f_b f_c with f the split's class frequencies (≈ 1/1000 each). Pearson's χ² over the
  # 1000 labels has 999 degrees of freedom (mean 999, sd 44.7); measured 1027.3 for key 0
  # and 200 000 samples (945–1027 over keys 0–4; against the exactly uniform 1/1000,
  # 1076–1182, since the split's digit frequencies are 0.097–0.102). Bound: mean + 4 sd = 1178.
  # Fewest draws of one label: measured 149 (keys 0–4: 148–159) of ≈ 200 expected.
  ds = data.stacked_digits()
  n = 200_000
  _, y = jax.jit(ds.sample_with_labels, static_argnums=1)(jax.random.key(0), n)
  observed = np.bincount(np.asarray(y), minlength=1000)
  f = np.bincount(ds.train.labels, minlength=10) / len(ds.train.labels)
  expected = n * np.einsum("a,b,c->abc", f, f, f).reshape(1000)
  chi2 = float(((observed - expected) ** 2 / expected).sum())
  assert chi2 < 999 + 4 * np.sqrt(2 * 999), chi2
  assert (observed > 0).all()  # all 1000 modes drawn (expected ≈ 200 each)


def test_stacking_a_colour_dataset_is_refused():
  ds = _digits()
  colour = data.ImageDataset("rgb", data.ImageArrays(np.zeros((4, 2, 2, 3), np.uint8),
                                                     np.zeros(4, np.int32)), ds.test)
  with pytest.raises(InvalidArgumentError, match="one-channel"):
    data.stacked(colour)


def test_sampling_inside_a_scan_with_the_arrays_as_an_argument():
  # The train loop's contract: the batch of step t is sample(fold_in(fold_in(key, DATA), t)).
  # With the arrays a jit argument (the large-dataset form), the compiled program holds no
  # copy of them and draws exactly the batches of the closure form.
  ds = data.stacked_digits()
  state = train.TrainState(step=jnp.int32(0), params={}, opt_states={},
                           key=jax.random.PRNGKey(7))

  def run(arrays):
    sample = ds.sampler(arrays)

    def body(s, _):
      x = sample(train.data_key(s), 16)
      return s.replace(step=s.step + 1), x
    return jax.lax.scan(body, state, None, length=4)[1]

  arrays = ds.arrays()
  lowered = jax.jit(run).lower(arrays)
  # Closed over, the 1438×8×8 uint8 split (92 KB) is compiled in as a constant: measured
  # 227 491 characters of HLO text against 43 386 with the arrays as an argument.
  closed, passed = len(jax.jit(lambda: run(ds.train)).lower().as_text()), len(lowered.as_text())
  assert passed < 90_000 and closed - passed > 150_000, (passed, closed)
  batches = lowered.compile()(arrays)
  assert batches.shape == (4, 16, 8, 8, 3)
  for t in range(4):  # step t's batch is a function of (key, t) alone: resume is exact
    np.testing.assert_array_equal(batches[t], ds.sample(train.data_key(state.replace(step=t)), 16))
  assert not np.array_equal(batches[0], batches[1])


@pytest.mark.parametrize("name, shape", [("mnist", (28, 28, 1)), ("cifar10", (32, 32, 3))])
def test_tfds_loader_under_mock_data(name, shape, tmp_path):
  with tfds.testing.mock_data(num_examples=24):
    ds = data.tfds_dataset(name, tmp_path)
  assert ds.shape == shape and ds.num_classes == 10 and ds.name == name
  assert ds.train.images.shape == (24, *shape) and ds.train.images.dtype == np.uint8
  x = ds.sample(jax.random.key(0), 32)
  assert x.shape == (32, *shape) and x.dtype == jnp.float32
  assert -1.0 <= float(x.min()) and float(x.max()) <= 1.0 and float(x.max()) > 0.9
  np.testing.assert_array_equal(x, ds.sample(jax.random.key(0), 32))
  held_x, held_y = ds.held_out()
  assert held_x.shape == (24, *shape) and held_y.dtype == np.int32


def test_stacked_mnist_under_mock_data(tmp_path):
  with tfds.testing.mock_data(num_examples=24):
    ds = data.image_dataset("stacked_mnist", tmp_path)
  assert ds.shape == (28, 28, 3) and ds.num_classes == 1000
  x, y = ds.sample_with_labels(jax.random.key(0), 8)
  assert x.shape == (8, 28, 28, 3) and int(y.max()) < 1000


def test_missing_tfds_data_names_dataset_folder_and_command(tmp_path):
  with pytest.raises(data.DatasetNotPreparedError) as info:
    data.tfds_dataset("fashion_mnist", tmp_path)
  message = str(info.value)
  assert "'fashion_mnist'" in message and str(tmp_path / "fashion_mnist") in message
  assert f"tfds build fashion_mnist --data_dir={tmp_path} --file_format=array_record" in message
  assert isinstance(info.value, InvalidArgumentError)


def test_unknown_names_are_refused():
  with pytest.raises(InvalidArgumentError, match="name='svhn'.*allowed: cifar10, fashion_mnist, mnist"):
    data.tfds_dataset("svhn", "/nowhere")
  with pytest.raises(InvalidArgumentError, match="dataset='svhn'.*stacked_digits"):
    data.image_dataset("svhn")
  assert set(data.IMAGE_DATASETS) == {"digits", "stacked_digits", "stacked4_digits", "mnist",
                                      "fashion_mnist", "cifar10", "stacked_mnist"}


@pytest.mark.slow  # ~16 s on the loaded 2-core machine (shard_map over 4 fake devices)
def test_arrays_argument_under_data_parallel_draws_the_one_device_batches():
  # The wiring a train loop uses for a large dataset: the chunk takes (arrays, state), the
  # arrays replicated over a 4-device mesh (fake CPU devices); each device keeps its slice
  # of the global batch the one-device run draws (ebm_gan.train._batch).
  from ebm_gan import parallel
  ds, devices, batch = data.stacked_digits(), 4, 8
  state = train.TrainState(step=jnp.int32(0), params={}, opt_states={},
                           key=jax.random.PRNGKey(2))

  def step(s, x):  # metrics: the global batch's per-sample sums, gathered in device order
    sums = jax.lax.all_gather(x.sum(axis=(1, 2, 3)), parallel.AXIS, tiled=True)
    return s.replace(step=s.step + 1), sums

  def chunk(arrays, s):
    return train.make_chunk(step, 3, ds.sampler(arrays), batch // devices,
                            axis_name=parallel.AXIS)(s)
  mapped = jax.jit(parallel.data_parallel(chunk, parallel.device_mesh(devices)))
  _, sums = mapped(ds.arrays(), state)
  for t in range(3):
    expected = ds.sample(train.data_key(state.replace(step=t)), batch).sum(axis=(1, 2, 3))
    np.testing.assert_allclose(sums[t], expected, rtol=1e-6)
