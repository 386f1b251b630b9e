"""The experiment runner behind ``python -m experiments.run``: it knows no mathematics.

argv → config (:mod:`~ebm_gan.runner.cli`) → one validation pass that builds the
library objects (:mod:`~ebm_gan.runner.programs.ebm_gan.config`, the programs' ``build``) →
the training loop (:mod:`~ebm_gan.runner.loop`) → the run folder
(:mod:`~ebm_gan.runner.record`, :mod:`~ebm_gan.runner.checkpoint`,
:mod:`~ebm_gan.runner.pictures`, :mod:`~ebm_gan.runner.tables`); sweeps in
:mod:`~ebm_gan.runner.sweep`; what a run does in :mod:`ebm_gan.runner.programs`.
The library (``import ebm_gan``) never imports this package.
"""
