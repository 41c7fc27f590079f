"""Ctrl-C outside training (while train.py imports torch and Lightning, parses the config or reads the data, the
seconds before a run starts) ends in one line instead of a traceback. train.py imports this module before anything
else, so the hook is in place during those imports. Ctrl-C during training is Lightning's to handle: it shuts down
gracefully and names the checkpoint to resume from (callbacks/interrupt_report.py)."""

from __future__ import annotations

import sys
from types import TracebackType

MESSAGE = "Interrupted (Ctrl-C)."


def one_line_on_ctrl_c(kind: type[BaseException], error: BaseException, traceback: TracebackType | None) -> None:
    """``sys.excepthook``: a KeyboardInterrupt prints one line; anything else its traceback, as Python's own hook.
    Python then exits as killed by SIGINT, as a shell expects of Ctrl-C."""
    if issubclass(kind, KeyboardInterrupt):
        print(f"\n{MESSAGE}", file=sys.stderr)
        return
    sys.__excepthook__(kind, error, traceback)


sys.excepthook = one_line_on_ctrl_c
