"""Full garbage collections that skip what the imports left behind.

torch, Lightning, jsonargparse and TensorBoard leave hundreds of thousands of objects that Python's collector
tracks and never frees, and a full collection walks them all: for a tiny net's fit or sweep that can cost as much
as the training. ``gc.freeze`` moves them out of the collector's sight for the command.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def long_lived_objects_frozen() -> Iterator[None]:
    """Collections inside skip every object alive on entry; on exit they are collectable again. Nested uses
    (a sweep run by ``train.py sweep``) leave it to the outermost."""
    if gc.get_freeze_count():
        yield
        return
    gc.freeze()
    try:
        yield
    finally:
        gc.unfreeze()
