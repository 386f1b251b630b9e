"""Pictures: the fixed energy scale, the tiled evolution figure, the smoothed curves, the
report's sample panels and the toy games' figures (readable: labels, legends and colour bars
inside the figure and off the data)."""

import os
import types

import matplotlib.colors
import matplotlib.contour
import matplotlib.pyplot as plt
import matplotlib.text
import numpy as np

from ebm_gan.runner import curves
from ebm_gan.runner.programs.toy_games import pictures as game_pictures
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


def _inside(fig, artist) -> bool:
  box, whole = artist.get_window_extent(), fig.bbox
  return (box.x0 >= whole.x0 - 0.5 and box.y0 >= whole.y0 - 0.5 and box.x1 <= whole.x1 + 0.5
          and box.y1 <= whole.y1 + 0.5)


def _legends(fig):
  return list(fig.legends) + [ax.get_legend() for ax in fig.axes if ax.get_legend()]


def test_the_contour_lines_panel_has_a_labelled_colour_bar():
  """Both panels of ``pictures/step_N.png`` encode log q_m by colour: the lines on the left as
  much as the filled contours on the right, so each has its own labelled colour bar."""
  xs, _, u = pictures.energy_grid(_bowl(0.0), 3.0, 40)
  fig = pictures.landscape_figure(xs, u, 3.0, None, 2.0, np.zeros((5, 2)), np.ones((5, 2)))
  sets = [c for ax in fig.axes for c in ax.collections
          if isinstance(c, matplotlib.contour.ContourSet)]
  assert len(sets) == 2 and not sets[0].filled  # the lines' panel, and the filled one
  for cs in sets:
    assert cs.colorbar is not None and "log q_m" in cs.colorbar.ax.get_ylabel()
  plt.close(fig)


def test_a_one_method_report_is_wide_enough_and_keeps_its_labels_apart(tmp_path):
  """A sweep of one method and one dataset: one panel, which used to make a 240 px figure
  whose legend was cut off and whose row label ran into the x₂ label."""
  file = str(tmp_path / "samples.npz")
  np.savez_compressed(file, samples=np.zeros((5, 2)), data=np.ones((5, 2)), scale=2.0)
  method = "entropy.name=knn, optimizer.learning_rate=0.0001, model.energy_hidden=(64, 64)"
  fig = pictures.sample_panels_figure([method], ["25gaussians"],
                                      {(method, "25gaussians"): file})
  fig.canvas.draw()
  (legend,) = _legends(fig)
  assert _inside(fig, legend)
  ax = fig.axes[0]
  assert not legend.get_window_extent().overlaps(ax.get_window_extent())  # off the data
  (row,) = [t for t in fig.findobj(matplotlib.text.Text) if "entropy.name" in t.get_text()]
  assert row.get_text().replace("\n", " ") == method  # wrapped, whole
  assert "x₂" not in row.get_text() and ax.get_ylabel() == "x₂"
  assert not row.get_window_extent().overlaps(ax.yaxis.label.get_window_extent())
  assert _inside(fig, row)
  assert fig.bbox.width >= 400
  plt.close(fig)


def test_an_image_report_tiles_the_samples_instead_of_plotting_two_pixels(tmp_path):
  """Image members' samples.npz hold x[N, H, W, C]: their panel shows 64 of them tiled (it
  scattered the first two pixel values as if they were x₁, x₂), with no data/samples legend."""
  file = str(tmp_path / "samples.npz")
  images = np.random.default_rng(0).uniform(-1, 1, (100, 8, 8, 3))
  np.savez_compressed(file, samples=images, data=images[:10], scale=1.0)
  fig = pictures.sample_panels_figure(["GAN"], ["stacked_digits"], {("GAN", "stacked_digits"): file})
  fig.canvas.draw()
  ax = fig.axes[0]
  (shown,) = ax.get_images()
  assert shown.get_array().shape == (8 * 9 + 1, 8 * 9 + 1, 3)  # 8 × 8 tiles and their lines
  assert not ax.collections and not _legends(fig)
  assert ax.get_xlabel() == "64 generator samples"
  plt.close(fig)


def _game_runs(steps=200):
  """A synthetic toy game with two methods, two learning rates, one seed: gda spirals out
  (distance 1.01ᵗ), ogda spirals in (0.9ᵗ); the theory's rates are those."""
  t = np.arange(steps + 1)
  game = types.SimpleNamespace(name="bilinear", plane_labels=("x[0]", "y[0]"),
                               equilibrium=lambda: None, plane=lambda _: np.zeros(2))
  groups = [types.SimpleNamespace(method=types.SimpleNamespace(name=n)) for n in ("gda", "ogda")]
  results = []
  for rho in (1.01, 0.9):
    d = np.stack([rho ** t, 0.5 * rho ** t])
    points = d[..., None] * np.stack([np.cos(0.3 * t), np.sin(0.3 * t)], -1)
    results.append(types.SimpleNamespace(distances=d, points=points))
  rate = lambda method, lr: 1.01 if method.name == "gda" else 0.9
  return game, groups, results, (0.1, 0.3), 1, rate


def test_the_theory_lines_lie_over_the_measured_ones_on_one_shared_scale():
  game, groups, results, lrs, seeds, rate = _game_runs()
  fig = game_pictures.distance_figure(game, groups, results, lrs, seeds, rate)
  fig.canvas.draw()
  assert len({ax.get_ylim() for ax in fig.axes}) == 1  # every method's panel compares
  for ax in fig.axes:
    theory = [line for line in ax.lines if line.get_linestyle() == "--"]
    measured = [line for line in ax.lines if line.get_linestyle() == "-"]
    assert len(theory) == len(measured) == 2
    assert min(t.get_zorder() for t in theory) > max(m.get_zorder() for m in measured)
    assert all(not np.allclose(matplotlib.colors.to_rgba(t.get_color()),
                               matplotlib.colors.to_rgba(m.get_color()))
               for t in theory for m in measured)
    assert ax.get_xlabel() == "step"
  assert "‖θ − θ*‖" in fig.axes[0].get_ylabel()
  (legend,) = _legends(fig)
  assert _inside(fig, legend)
  assert any("theory" in text.get_text() for text in legend.get_texts())
  plt.close(fig)


def test_the_trajectories_legend_stays_off_the_equilibrium_and_the_data():
  game, groups, results, lrs, seeds, _ = _game_runs()
  fig = game_pictures.trajectories_figure(game, groups, results, lrs, seeds, radius=1.0)
  fig.canvas.draw()
  (legend,) = _legends(fig)
  box = legend.get_window_extent()
  assert _inside(fig, legend)
  for ax in fig.axes:
    assert not box.contains(*ax.transData.transform((0.0, 0.0)))  # θ*
    assert not box.overlaps(ax.get_window_extent())
    assert ax.get_xlabel() == "x[0]"
  assert fig.axes[0].get_ylabel() == "y[0]"
  plt.close(fig)


def test_a_metric_logged_under_two_names_is_drawn_once(tmp_path, monkeypatch):
  """With the MI estimator the logged value (mi_bound) is mi_dv itself (to float32 rounding):
  one panel named after both; a series that differs keeps its own panel."""
  steps = np.arange(1, 51)
  dv = np.sin(steps / 7.0)
  drawn = []
  monkeypatch.setattr(curves, "_draw_panel",
                      lambda ax, s, found, span, title: drawn.append((title, list(found))))
  curves.training_curves(str(tmp_path / "c.png"), steps, {
      "loss_energy": steps * 1.0, "mi_bound": dv.astype(np.float32) + np.float32(1e-8),
      "mi_dv": dv, "mi_jsd": dv + 0.1, "grad_norm/energy": steps + 1.0})
  assert drawn == [("loss_energy", ["loss_energy"]), ("mi_bound = mi_dv", ["mi_bound"]),
                   ("mi_jsd", ["mi_jsd"]), ("grad_norm", ["grad_norm/energy"])]
  nan = np.r_[np.nan, dv[1:]]  # finite at other steps: another series
  assert len(curves.merge_identical({"a": {"a": dv}, "b": {"b": nan}})) == 2


def test_four_channel_images_are_tiled_as_their_channels_side_by_side():
  """A 4-stack [N, H, W, 4] tiles as grey [N, H, 4·W] images: pixel (r, j·W + c) of image i is
  channel j's pixel (r, c); 1 and 3 channels (grey, RGB) tile as they are."""
  rng = np.random.default_rng(0)
  images = rng.uniform(0, 1, (3, 2, 5, 4)).astype(np.float32)
  grid = pictures._tiled(images, columns=2)
  assert grid.shape == (2 * 3 + 1, 2 * (4 * 5 + 1) + 1, 1)
  second = grid[1:3, 1 + 21:1 + 21 + 20, 0]  # image 1: row 0, column 1
  for j in range(4):
    np.testing.assert_array_equal(second[:, 5 * j:5 * (j + 1)], images[1, :, :, j])
  assert pictures._tiled(images[..., :3], columns=2).shape == (7, 13, 3)


def test_a_grid_of_four_channel_stacks_stays_about_square():
  """64 samples of 8×8×4 (each 32 px wide once its channels sit side by side): 4 per row, 16
  rows, 16·9 + 1 = 145 by 4·33 + 1 = 133 pixels; RGB keeps 8 per row (73 by 73)."""
  fig, ax = plt.subplots()
  assert pictures._show_tiles(ax, np.zeros((64, 8, 8, 4))) == (145, 133)
  assert pictures._show_tiles(ax, np.zeros((64, 8, 8, 3))) == (73, 73)
  plt.close(fig)
