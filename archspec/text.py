"""Text helpers for messages: a leaf module (standard library only) that every stage shares."""
from __future__ import annotations

import difflib


# names other libraries use for what archspec calls otherwise (Keras, torch), offered before spelling matches
SYNONYMS = {"filters": "out", "units": "out", "out_channels": "out", "out_features": "out", "pool_size": "kernel",
            "kernel_size": "kernel", "strides": "stride", "learning_rate": "lr", "rate": "p", "epsilon": "eps"}


def did_you_mean(word: str, choices) -> str:
    """" (did you mean 'x'?)" for the closest of ``choices``, or "" when none is close."""
    choices = sorted(choices)
    if word == "activation":  # Keras' Dense(..., activation="relu")
        return " (archspec has no activation argument: add the activation as the next item, e.g. - relu)"
    synonym = SYNONYMS.get(str(word))
    if synonym in choices:
        return f" (did you mean '{synonym}'?)"
    close = difflib.get_close_matches(str(word), choices, n=1, cutoff=0.6)
    return f" (did you mean '{close[0]}'?)" if close else ""


def listing(names, most: int = 12) -> str:
    """``a, b, c`` for a message; past ``most`` names, the first ones and how many there are in all."""
    names = [str(n) for n in names]
    shown = ", ".join(names[:most])
    return shown + (f", … ({len(names):,} in all)" if len(names) > most else "")
