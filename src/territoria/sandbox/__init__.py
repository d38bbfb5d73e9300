"""The sandbox territory: a fictitious métropole and every service's export of it.

``generate(population, seed, out)`` writes a realistic but entirely fictitious population
living in the real communes of the Métropole de Lyon, the files each service would deliver
about it (each in its own format and habits, with realistic noise), the ground truth in
``truth/`` and a ``manifest.json``.
"""

from territoria.sandbox.context import Options
from territoria.sandbox.generator import GENERATOR, SOURCES, Manifest, generate
from territoria.sandbox.noise import NOISE_LEVELS, NoiseRates

__all__ = ["GENERATOR", "NOISE_LEVELS", "SOURCES", "Manifest", "NoiseRates", "Options", "generate"]
