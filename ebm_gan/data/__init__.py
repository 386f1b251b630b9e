"""Datasets: jittable 2-D toy samplers (:mod:`ebm_gan.data.toy`)."""
from ebm_gan.data import toy
