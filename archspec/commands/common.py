"""What every command shares: the console, error reporting and exit codes, the --set option.

Exit codes: 0 ok, 1 the spec or data is wrong, 2 the command line is wrong.
A user mistake prints one located message per problem, never a traceback.
"""
from __future__ import annotations

import errno
import functools
import os
import sys
import warnings

import click

from ..errors import ArchspecError, Location, UsageError

EXIT_SPEC, EXIT_USAGE = 1, 2


def console(file=None):
    from rich.console import Console

    stream = file or sys.stdout
    width = None if stream.isatty() else int(os.environ.get("COLUMNS", 160))
    # what archspec prints is data (layer names, shapes), never rich markup or emoji codes
    return Console(file=stream, width=width, highlight=False, soft_wrap=False, markup=False, emoji=False)


def report(error: ArchspecError) -> None:
    for problem in error.problems:
        click.echo(str(problem), err=True)


def _show_warning(message, category, filename, lineno, file=None, line=None):
    """archspec's own warnings as one line, "LOCATION: warning: …", like its errors (their text starts
    with the data file's location); Python's display would add a line of archspec's source instead."""
    if category.__module__.startswith("archspec."):
        where, sep, text = str(message).partition(": ")
        click.echo(f"{where}: warning: {text}" if sep else f"warning: {message}", err=True)
    else:
        _default_showwarning(message, category, filename, lineno, file, line)


_default_showwarning = warnings.showwarning


def user_errors(command):
    """Turn archspec's errors into messages and exit codes instead of tracebacks."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            with warnings.catch_warnings():
                warnings.showwarning = _show_warning
                return command(*args, **kwargs)
        except UsageError as exc:
            report(exc)
            sys.exit(EXIT_USAGE)
        except ArchspecError as exc:
            report(exc)
            sys.exit(EXIT_SPEC)
        except BrokenPipeError:  # `archspec summary x | head`
            sys.stderr.close()
            sys.exit(0)
        except OSError as exc:  # a write outside atomic_write: a full disk or quota is the user's to fix
            if exc.errno not in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS):
                raise
            report(ArchspecError(f"cannot write: {exc.strerror}", Location(str(exc.filename or "output"))))
            sys.exit(EXIT_SPEC)

    return wrapper


set_option = click.option("--set", "overrides", multiple=True, metavar="NAME=VALUE",
                          help="Override a spec parameter (repeatable), e.g. --set classes=10.")


def fit_option(default: str = "stretch"):
    """--fit: how an image file is fitted to the spec's input (archspec.images; the same for every command)."""
    from ..images import FITS

    return click.option("--fit", type=click.Choice(FITS), default=default, show_default=True,
                        help="Fit an image to the input: stretch it whole (as training does), or crop its "
                             "centre to the input's aspect ratio first.")
