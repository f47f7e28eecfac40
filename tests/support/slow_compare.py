"""A comparison that hangs on request, importable in the answer-check processes."""

import os
import time
from pathlib import Path

from annotator.answer_check import _compare


def compare_or_hang(gold: str, candidate: str):
    """``hang:<file>`` writes this process's id to the file, then computes for ever, as a
    sympy comparison that never ends would."""
    if candidate.startswith("hang:"):
        Path(candidate.removeprefix("hang:")).write_text(str(os.getpid()))
        while True:
            time.sleep(0.05)
    if candidate.startswith("slow:"):  # ``slow:<seconds>``: a slow comparison that ends
        time.sleep(float(candidate.removeprefix("slow:")))
        return True
    return _compare(gold, candidate)
