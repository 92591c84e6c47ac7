"""view: a local page that follows a spec as it is edited (no torch)."""
from __future__ import annotations

import click

from .common import user_errors


@click.command()
@click.argument("spec", type=click.Path(exists=True, dir_okay=False))
@click.option("--port", type=click.IntRange(0, 65535), default=0, show_default=True,
              help="Port on 127.0.0.1 (0: any free one).")
@click.option("--open/--no-open", "open_browser", default=True, help="Open the page in the default browser.")
@user_errors
def view(spec, port, open_browser):
    """Show SPEC in the browser: diagram, table, problems; it updates as the file changes."""
    from ..view import serve

    try:
        serve(spec, port, open_browser, announce=click.echo)
    except OSError as exc:
        raise click.UsageError(f"cannot serve on 127.0.0.1:{port}: {exc.strerror or exc}") from None
