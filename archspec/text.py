"""Text helpers for messages: a leaf module (standard library only) that every stage shares."""
from __future__ import annotations


def listing(names, most: int = 12) -> str:
    """``a, b, c`` for a message; past ``most`` names, the first ones and how many there are in all."""
    names = [str(n) for n in names]
    shown = ", ".join(names[:most])
    return shown + (f", … ({len(names):,} in all)" if len(names) > most else "")
