"""Pictures: the fixed energy scale, the tiled evolution figure, the smoothed curves."""

import os

import numpy as np

from ebm_gan.runner import curves
from ebm_gan.runner import pictures


def _bowl(offset):
  return lambda x: offset - np.sum(np.asarray(x) ** 2, axis=1)


def test_energy_is_shown_as_a_normalised_log_density_on_a_fixed_scale():
  # U = −‖x‖²/(2·0.25) on [−3, 3]²: q_m = N(0, 0.25 I), log q_m(0) = −log(2π·0.25) = 0.4516
  # (the box holds all but e^{-18} of the mass; the grid's midpoint-like sum on 301² points
  # is exact to 1e-9 here; asserted 1e-6).
  xs, _, u = pictures.energy_grid(lambda x: -np.sum(np.asarray(x) ** 2, 1) / 0.5, 3.0, 301)
  logq = pictures.log_density(u, 3.0)
  assert abs(logq[150, 150] - (-np.log(2 * np.pi * 0.25))) < 1e-6
  assert logq.min() == pictures.LOGQ_FLOOR
  # U's offset is arbitrary: pictures of U and U + 7 are the same picture
  np.testing.assert_allclose(logq, pictures.log_density(u + 7.0, 3.0), atol=1e-5)  # float32 U


def test_the_pictures_normaliser_counts_mass_off_the_box():
  """U = log(½N(0, 0.25 I) + ½N((5, 0), 0.25 I)) + 7 on the box [−3, 3]²: over the plane Ẑ_m =
  e^7 and log q_m(0) = log ½ − log(2π·0.25) = −0.2416; normalised on the box alone, half
  the mass would be lost and log q_m(0) read +0.4516. Measured errors 3.7e-6 (the quadrature
  on the plane's coarse cells; asserted 1e-5) and, on the box alone, 3.4e-5 (asserted 1e-4)."""
  def energy(x):
    x = np.asarray(x, np.float64)
    a, b = -np.sum(x ** 2, 1) / 0.5, -np.sum((x - [5.0, 0.0]) ** 2, 1) / 0.5
    return np.logaddexp(a, b) + np.log(0.5) - np.log(2 * np.pi * 0.25) + 7.0
  assert abs(pictures.plane_log_z(energy, 3.0) - 7.0) < 1e-5
  xs, _, u = pictures.energy_grid(energy, 3.0, 301)
  logq = pictures.log_density(u, 3.0, pictures.plane_log_z(energy, 3.0))
  assert abs(logq[150, 150] - (np.log(0.5) - np.log(2 * np.pi * 0.25))) < 1e-5
  assert abs(pictures.log_density(u, 3.0)[150, 150] + np.log(2 * np.pi * 0.25)) < 1e-4


def test_periodic_pictures_tile_into_an_evolution_figure(tmp_path):
  folder = tmp_path / "pictures"
  folder.mkdir()
  rng = np.random.default_rng(0)
  for step, offset in ((100, 0.0), (200, 50.0), (300, -3.0)):
    pictures.landscape(str(folder / f"step_{step:07d}.png"), rng.normal(size=(50, 2)),
                       _bowl(offset), 2.0, data=rng.normal(size=(40, 2)), title=f"step {step}")
  assert sorted(os.listdir(folder)) == [f"step_{s:07d}.{e}" for s in (100, 200, 300)
                                        for e in ("npz", "png")]
  out = pictures.evolution(str(folder), str(tmp_path / "evolution.png"))
  assert out and os.path.getsize(out) > 0
  assert pictures.evolution(str(tmp_path / "none"), str(tmp_path / "x.png")) is None


def test_curves_smooth_and_give_each_loss_its_own_panel(tmp_path):
  x = np.r_[np.zeros(50), np.ones(50)]
  smooth = curves.ema(x, span=9)
  assert smooth[0] == 0.0 and 0.0 < smooth[55] < 1.0 and abs(smooth[-1] - 1.0) < 1e-3
  assert np.isnan(curves.ema([np.nan, 1.0], 3)[0]) and curves.ema([np.nan, 1.0], 3)[1] == 1.0
  assert curves.panel_of("loss_energy") != curves.panel_of("loss_generator")
  assert curves.panel_of("grad_norm/energy") == curves.panel_of("grad_norm/generator")
  steps = np.arange(1, 101)
  curves.training_curves(str(tmp_path / "c.png"), steps,
                         {"loss_energy": np.sin(steps), "loss_generator": 1e3 * steps,
                          "grad_norm/energy": steps + 1.0, "grad_norm/generator": steps + 2.0})
  assert os.path.getsize(tmp_path / "c.png") > 0


def test_the_final_pictures_title_names_the_quality_and_a_status_other_than_ok():
  mixture = {"steps_done": 24000, "modes_covered": 25, "num_modes": 25, "high_quality": 0.9244,
             "mmd2": 1e-4}
  assert (pictures.run_title("25gaussians", mixture, "ok")
          == "25gaussians, step 24000: 25/25 modes, 92.4% high-quality")
  assert (pictures.run_title("25gaussians", dict(mixture, modes_covered_20=23), "ok")
          == "25gaussians, step 24000: 25/25 modes (23 with ≥ 20), 92.4% high-quality")
  assert (pictures.run_title("swissroll", {"steps_done": 300, "mmd2": 7.925e-5}, "ok")
          == "swissroll, step 300: MMD² 7.9e-05 to held-out data")
  assert (pictures.run_title("swissroll", {"steps_done": 30, "mmd2": 0.5}, "diverged")
          == "swissroll, step 30: MMD² 5.0e-01 to held-out data (diverged)")
  assert pictures.run_title("moons", {"steps_done": 7}, "diverged") == "moons, step 7: diverged"
