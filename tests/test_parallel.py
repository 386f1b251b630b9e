"""Data-parallel steps on 4 fake CPU devices (conftest sets the XLA flag before jax loads)."""

import jax
import numpy as np
import pytest

from ebm_gan import entropy, game, models, optim, parallel, train

N = 4


@pytest.fixture(scope="module", autouse=True)
def _need_devices():
  if jax.local_device_count() < N:
    pytest.skip("needs XLA_FLAGS=--xla_force_host_platform_device_count=4 before jax import")


def _game():
  return game.EBMGame(models.MLPEnergy((8,)), models.MLPGenerator(2, 2, (8,)),
                      entropy=entropy.KNN())


@pytest.mark.slow  # > 10 s in a full run on the shared 2-core machine
def test_pmapped_step_applies_the_mean_of_per_device_directions():
  """θ' = θ − η·(1/4)Σ_i d_i, d_i the directions on shard i with key fold_in(key, i)."""
  g, tx, lr = _game(), optim.gda(0.1), 0.1
  x = jax.random.normal(jax.random.PRNGKey(0), (4 * 8, 2))
  state = train.init_state(g, tx, jax.random.PRNGKey(1), x[:8])
  step = parallel.data_parallel(train.make_train_step(g, tx, axis_name=parallel.AXIS))
  new, metrics = step(parallel.replicate(state, N), parallel.shard(x, N))
  # Replicas stay identical.
  for leaf in jax.tree.leaves(new.params):
    np.testing.assert_array_equal(leaf[0], leaf[-1])
  key = jax.random.fold_in(jax.random.fold_in(state.key, 0), 0)
  ds = [g.value_and_directions(state.params, x[8 * i:8 * (i + 1)], jax.random.fold_in(key, i))[1]
        for i in range(N)]
  mean = jax.tree.map(lambda *d: sum(d) / N, *ds)
  expect = jax.tree.map(lambda p, d: p - lr * d, state.params, mean)
  for a, b in zip(jax.tree.leaves(parallel.unreplicate(new.params)), jax.tree.leaves(expect)):
    np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
  assert metrics["l1"].shape == (N,)
  np.testing.assert_allclose(metrics["l1"][0], metrics["l1"][-1])  # pmean-ed


@pytest.mark.slow  # > 10 s in a full run on the shared 2-core machine
def test_pmapped_chunk_draws_a_different_batch_per_device():
  """A one-step pmapped chunk equals the mean direction over the per-device batches
  sampler(fold_in(data_key, i)): each device draws its own data."""
  g, tx, lr = _game(), optim.gda(0.1), 0.1
  sampler = lambda k, n: jax.random.normal(k, (n, 2))
  state = train.init_state(g, tx, jax.random.PRNGKey(1), sampler(jax.random.PRNGKey(0), 8))
  chunk = parallel.data_parallel(train.make_chunk(
      train.make_train_step(g, tx, axis_name=parallel.AXIS), 1, sampler, 8,
      axis_name=parallel.AXIS))
  new, metrics = chunk(parallel.replicate(state, N))
  assert int(parallel.unreplicate(new.step)) == 1
  assert metrics["l1"].shape == (N, 1)
  key = jax.random.fold_in(jax.random.fold_in(state.key, 0), 0)
  ds = [g.value_and_directions(state.params,
                               sampler(jax.random.fold_in(train.data_key(state), i), 8),
                               jax.random.fold_in(key, i))[1] for i in range(N)]
  expect = jax.tree.map(lambda p, *d: p - lr * sum(d) / N, state.params, *ds)
  for a, b in zip(jax.tree.leaves(parallel.unreplicate(new.params)), jax.tree.leaves(expect)):
    np.testing.assert_allclose(a, b, rtol=1e-4, atol=1e-5)
