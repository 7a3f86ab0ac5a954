"""The sandbox's sales world: the model (``model``), its generator (``generate``), time moving
on (``advance``), the ground truth (``truth``) and the demo configuration (``demo_config``).

The public functions are importable from here; they load on first use, so importing the
model alone stays cheap.
"""

from __future__ import annotations

from importlib import import_module
from typing import Any

_PUBLIC = {
    "generate": "sandbox.world.generate",
    "generate_stream": "sandbox.world.generate",
    "WORLD_NOW": "sandbox.world.generate",
    "advance": "sandbox.world.advance",
    "ChangeSet": "sandbox.world.advance",
    "write_truth": "sandbox.world.truth",
    "load_truth": "sandbox.world.truth",
    "Truth": "sandbox.world.truth",
    "write_demo_config": "sandbox.world.demo_config",
}

__all__ = sorted(_PUBLIC)


def __getattr__(name: str) -> Any:
    if name in _PUBLIC:
        return getattr(import_module(_PUBLIC[name]), name)
    raise AttributeError(f"module 'sandbox.world' has no attribute {name!r}")
