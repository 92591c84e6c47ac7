"""Text helpers for messages: a leaf module (standard library only) that every stage shares."""
from __future__ import annotations

import difflib


def did_you_mean(word: str, choices) -> str:
    """" (did you mean 'x'?)" for the closest of ``choices``, or "" when none is close."""
    close = difflib.get_close_matches(str(word), sorted(choices), n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def listing(names, most: int = 12) -> str:
    """``a, b, c`` for a message; past ``most`` names, the first ones and how many there are in all."""
    names = [str(n) for n in names]
    shown = ", ".join(names[:most])
    return shown + (f", … ({len(names):,} in all)" if len(names) > most else "")
