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

from ..errors import ArchspecError, Location, SpecWarning, UsageError

EXIT_SPEC, EXIT_USAGE = 1, 2


PIPE_WIDTH = 160  # columns of text written to a file or a pipe, unless $COLUMNS says otherwise


def _pipe_width() -> int:
    try:
        return max(int(os.environ.get("COLUMNS", PIPE_WIDTH)), 20)
    except ValueError:  # COLUMNS=wide: not a width
        return PIPE_WIDTH


def console(file=None):
    from rich.console import Console

    stream = file or sys.stdout
    width = None if stream.isatty() else _pipe_width()  # None: rich asks the terminal
    # what archspec prints is data (layer names, shapes), never rich markup or emoji codes
    return Console(file=stream, width=width, highlight=False, soft_wrap=False, markup=False, emoji=False)


def print_lines(lines_for_width) -> None:
    """Print text laid out by ``lines_for_width(width)`` (archspec/text_table.py) on standard output:
    at the terminal's width with bold and italic there (unless NO_COLOR or TERM=dumb), else plain."""
    import shutil

    from ..text_table import ansi, plain

    terminal = sys.stdout.isatty()
    lines = lines_for_width(shutil.get_terminal_size().columns if terminal else _pipe_width())
    styled = terminal and not os.environ.get("NO_COLOR") and os.environ.get("TERM") != "dumb"
    click.echo(ansi(lines) if styled else plain(lines), file=sys.stdout, nl=False, color=styled)


def print_table(columns, rows: list[list[str]]) -> None:
    """A table without a title, fitted to the output's width where its wrapping columns allow."""
    from ..text_table import column_widths, table_lines

    print_lines(lambda width: table_lines("", columns, rows, column_widths(columns, rows, width)
                                          or column_widths(columns, rows, 10**9) or []))


def report(error: ArchspecError) -> None:
    for problem in error.problems:
        click.echo(str(problem), err=True)


def _warning_printer():
    """A ``warnings.showwarning`` for one command: archspec's own warnings as one line, "LOCATION: warning: …",
    like its errors (a spec's carry their Problem; the others' text starts with the data file's location),
    each once however often a stage issues it; Python's display would add a line of archspec's source."""
    shown: set[str] = set()

    def show(message, category, filename, lineno, file=None, line=None):
        if not category.__module__.startswith("archspec."):
            return _default_showwarning(message, category, filename, lineno, file, line)
        if isinstance(message, SpecWarning):
            text = str(message.problem)
        else:
            where, sep, rest = str(message).partition(": ")
            text = f"{where}: warning: {rest}" if sep else f"warning: {message}"
        if text not in shown:
            shown.add(text)
            click.echo(text, err=True)

    return show


_default_showwarning = warnings.showwarning


def user_errors(command):
    """Turn archspec's errors into messages and exit codes instead of tracebacks."""

    @functools.wraps(command)
    def wrapper(*args, **kwargs):
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("always", SpecWarning)  # the printer shows each once per command
                warnings.showwarning = _warning_printer()
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
