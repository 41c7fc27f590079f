"""Full garbage collections that skip what the imports left behind.

torch, Lightning, jsonargparse and TensorBoard leave ~500,000 objects that Python's collector tracks and
never frees. A full collection walks them all: 0.24-0.26 s each here. One came in one of five Lab-4
sweeps measured (10,000 epochs) and in one of three tiny-net fits (a Lab-4 fit took 1.38 s, of which
0.26 s was that collection). ``gc.freeze`` moves them out of the collector's sight for the command.
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
