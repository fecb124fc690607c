"""Exponential backoff with (equal) jitter, so a fleet that lost its dispatcher does not
come back in lockstep."""

from __future__ import annotations

import random


class Backoff:
    """``next()`` gives the pause before the next try; ``reset()`` after a success."""

    def __init__(self, base: float = 0.5, cap: float = 30.0) -> None:
        self.base = base
        self.cap = cap
        self.failures = 0

    def next(self) -> float:
        ceiling = min(self.cap, self.base * (2**self.failures))
        self.failures = min(self.failures + 1, 32)
        return random.uniform(ceiling / 2, ceiling)

    def reset(self) -> None:
        self.failures = 0
