"""The fixed seed of every bundled example (tiles, layers, networks).
"""

from __future__ import annotations

EXAMPLE_SEED = 2026
