"""Worlds shared by the sandbox tests. The session-scoped ones must not be mutated: a test
that advances a world builds its own with ``make_world``."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from sandbox.world.generate import generate
from sandbox.world.model import World


@pytest.fixture(scope="session")
def small_world() -> World:
    """About 300 deals, seed 7: enough of every kind of deal for a stand-in's tests."""
    return generate(7, 300)


@pytest.fixture(scope="session")
def demo_world() -> World:
    """The demo's size (3,000 deals, seed 7): large enough for rates to be measured."""
    return generate(7, 3000)


@pytest.fixture
def make_world() -> Callable[[int, int], World]:
    """A fresh world of one's own (seed, deals), free to mutate."""
    return generate
