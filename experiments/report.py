"""Tables a finished sweep across seeds: ``python -m experiments.report SWEEP_DIR ... --out STEM``.

Writes ``STEM.md`` (mean ± std over seeds per method and dataset, or with ``--by-seed`` every
seed's value) and ``STEM.png`` (one
sample panel per method and dataset); see :mod:`ebm_gan.runner.report`. Several SWEEP_DIRs
(parts of one benchmark run apart with ``--only``) are tabled together. When no member saved
samples (none finished) the table is written without the figure, and one line on stderr names
the members without a summary. Exit status 0 when the table is written; 2 when a SWEEP_DIR
holds no sweep table, or the tables list no member at all (nothing is written).
"""

import argparse
import os
import sys

from ebm_gan.runner import report


def _parser() -> argparse.ArgumentParser:
  parser = argparse.ArgumentParser(prog="python -m experiments.report", description=__doc__)
  parser.add_argument("sweep_dirs", nargs="+", metavar="SWEEP_DIR",
                      help="a sweep's --workdir (it holds sweep.csv); several are tabled together")
  parser.add_argument("--out", default=None,
                      help="output path without extension (default: the first SWEEP_DIR/report)")
  parser.add_argument("--title", default="", help="a heading for the markdown table")
  parser.add_argument("--by-seed", action="store_true",
                      help="list each seed's value ('a / b / c') instead of mean ± std")
  return parser


def main(argv) -> int:
  args = _parser().parse_args(argv)
  for sweep_dir in args.sweep_dirs:
    if not os.path.isfile(os.path.join(sweep_dir, "sweep.csv")):
      print(f"error: {sweep_dir!r} holds no sweep.csv; pass the --workdir of a finished "
            "sweep (python -m experiments.run ... --sweep ... or a config with sweep()).",
            file=sys.stderr)
      return 2
  out = args.out or os.path.join(args.sweep_dirs[0], "report")
  try:
    rows = [row for d in args.sweep_dirs for row in report.read_rows(d)]
    if not rows:
      print(f"error: the sweep.csv of {args.sweep_dirs!r} lists no member: nothing to report "
            "(no table or figure written); let the sweep finish a member first.",
            file=sys.stderr)
      return 2
    written = report.write(args.sweep_dirs, out, args.title, by_seed=args.by_seed)
  except UnicodeDecodeError as e:
    print(f"error: a sweep.csv of {args.sweep_dirs!r} is not UTF-8 text (byte {e.start}): it is "
          "not a table this launcher wrote; run the sweep again or restore its sweep.csv.",
          file=sys.stderr)
    return 2
  except OSError as e:
    print(f"error: cannot read or write {e.filename!r} ({e.strerror}); check --out={out!r} "
          f"(a path without extension whose folder can be made) and the sweep folders.",
          file=sys.stderr)
    return 2
  for path in written:
    print(path)
  if not any(path.endswith(".png") for path in written):
    print(f"note: {report.figure_gap(rows)}", file=sys.stderr)
  return 0


if __name__ == "__main__":
  sys.exit(main(sys.argv[1:]))
