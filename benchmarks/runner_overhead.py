"""Time overhead of the runner's checkpoints, logs and pictures per 1000 training steps.

  python benchmarks/runner_overhead.py                  # smoke-sized model, 2000 steps
  python benchmarks/runner_overhead.py --full           # the default model (256x3 MLPs)
  python benchmarks/runner_overhead.py --steps 4000 --checkpoint-every 500

Runs the 'ebm_gan' program in-process twice on the same config: *bare*
(one checkpoint at the end, no TensorBoard, metrics.jsonl every 1000th step,
no periodic pictures) and *logged* (the default runner settings: a checkpoint
every ``--checkpoint-every`` steps, every step in metrics.jsonl, TensorBoard
every 10th step, a picture every 1000 steps). It prints the time each part
took (timed around each part), scaled to 1000 steps, and the difference of
the training loops' wall times (compilation excluded; the fastest of
``--repeats`` alternating runs, still noisy on a shared machine). Numbers
depend on the machine; they are measured here, never asserted in tests.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from ebm_gan.runner import cli  # noqa: E402  pylint: disable=g-import-not-at-top
from ebm_gan.runner.programs import ebm_gan as program  # noqa: E402  pylint: disable=g-import-not-at-top

DEFAULT = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))),
                       "experiments", "configs", "default.py")


def _run(overrides, workdir):
  config = cli.resolve_config(DEFAULT, overrides)
  return program.run(program.build(config), workdir, progress=False)


def main(argv=None):
  """Runs the bare and the logged configuration and prints the per-1000-step table."""
  p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
  p.add_argument("--steps", type=int, default=2000)
  p.add_argument("--checkpoint-every", type=int, default=1000)
  p.add_argument("--full", action="store_true", help="the default model instead of smoke size")
  p.add_argument("--repeats", type=int, default=2,
                 help="alternate bare/logged runs this many times; the fastest of each counts")
  args = p.parse_args(argv)
  size = [] if args.full else [("model.energy_hidden", "(32, 32)"),
                               ("model.generator_hidden", "(32, 32)"), ("batch_size", "64"),
                               ("eval_samples", "500")]
  common = size + [("steps", str(args.steps))]
  bare = common + [("checkpoint_every", str(10 * args.steps)), ("tensorboard_every", "0"),
                   ("log_every", "1000"), ("picture_every", "0")]
  logged = common + [("checkpoint_every", str(args.checkpoint_every)), ("log_every", "1"),
                     ("tensorboard_every", "10"), ("picture_every", "1000")]
  loop = lambda s: s["wall_s"] - s["compile_s"]
  with tempfile.TemporaryDirectory() as tmp:
    _run(common + [("steps", "200")], os.path.join(tmp, "warmup"))
    runs_a, runs_b = [], []
    for r in range(args.repeats):  # alternating, so that a busy machine hurts both alike
      runs_a.append(_run(bare, os.path.join(tmp, f"bare{r}")))
      runs_b.append(_run(logged, os.path.join(tmp, f"logged{r}")))
  a, b = min(runs_a, key=loop), min(runs_b, key=loop)
  per_k = 1000.0 / args.steps
  saves = args.steps // args.checkpoint_every
  print(f"model: {'default (256x3)' if args.full else 'smoke-sized (32x2)'}, "
        f"{args.steps} steps, steps_per_dispatch=200, fastest of {args.repeats}")
  print("| per 1000 steps | seconds |")
  print("|---|---|")
  rows = [
      ("training loop, bare (no periodic checkpoint/log)", loop(a) * per_k),
      ("training loop, logged", loop(b) * per_k),
      ("  difference (total overhead)", (loop(b) - loop(a)) * per_k),
      (f"  checkpoints ({saves} saves, {b['checkpoint_s'] / max(saves, 1):.3f} s each)",
       b["checkpoint_s"] * per_k),
      ("  metrics.jsonl every step + TensorBoard every 10th", b["log_s"] * per_k),
      ("  pictures (one per 1000 steps)", b["picture_s"] * per_k),
      ("bare: metrics.jsonl every 1000th step", a["log_s"] * per_k),
  ]
  for name, value in rows:
    print(f"| {name} | {value:.3f} |")
  # From the loops' wall times, as in the table (the summaries' steady steps/s time the
  # compiled chunks alone, without the runner's work, so they cannot show its cost).
  print(f"steps/s of the training loop, runner work included: bare {args.steps / loop(a):.0f}"
        f" | logged {args.steps / loop(b):.0f}")


if __name__ == "__main__":
  main()
