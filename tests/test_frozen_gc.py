"""Commands run with the imports' objects out of the collector's sight, and give them back afterwards."""

from __future__ import annotations

import gc

from commands.frozen_gc import long_lived_objects_frozen


def test_the_outermost_use_freezes_and_unfreezes_and_nested_uses_leave_it_alone() -> None:
    assert gc.get_freeze_count() == 0
    with long_lived_objects_frozen():
        frozen = gc.get_freeze_count()
        assert frozen > 1000  # the imports' objects: torch, numpy, pytest
        with long_lived_objects_frozen():  # e.g. run_sweep inside `train.py sweep`
            assert gc.get_freeze_count() == frozen
        assert gc.get_freeze_count() == frozen
    assert gc.get_freeze_count() == 0  # collectable again: nothing leaks across in-process commands
