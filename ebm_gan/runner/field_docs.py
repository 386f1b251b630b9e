"""One line per config field, for ``--help``: what the field does.

Each program's config keys (dotted) map to a sentence, in its own folder's ``fields.py``
(these are the fields every program has); ``tests/runner/test_help.py`` checks that
every field of every config file in experiments/configs/ has one, so a new field cannot
reach the help undocumented. The named choices are listed beside them from the program's
``CHOICES``; the values' units and the defaults' reasons are in the config files.
"""

# Fields every program has.
COMMON = {
    "program": "which program experiments.run starts",
    "seed": "the run's seed: every random number is a function of (seed, step)",
    "smoke": "shrink everything for a quick check (applied after the overrides)",
    "critic_steps": "critic sub-steps per generator step (scheme=alternating)",
    "divergence_bound": "a loss (or distance) above this, or NaN/Inf, marks the run diverged",
}
