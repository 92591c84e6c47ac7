"""The ``archspec`` command: a table of subcommands, each a thin shell over the public API.

A command's module is imported only when that command runs (click's documented lazy-group
pattern), so ``archspec summary`` pays for the analysis and nothing else. To add a command,
write it in a module under ``archspec/commands/`` and add one row to ``COMMANDS``.
"""
from __future__ import annotations

import importlib

import click

# name -> "module:attribute", in the order ``archspec --help`` lists them
COMMANDS = {
    "validate": "archspec.commands.analysis:validate",
    "summary": "archspec.commands.analysis:summary",
    "schema": "archspec.commands.analysis:schema",
    "zoo": "archspec.commands.analysis:zoo_command",
    "draw": "archspec.commands.drawing:draw",
    "compare": "archspec.commands.drawing:compare",
    "view": "archspec.commands.viewing:view",
    "compile": "archspec.commands.modelling:compile_command",
    "export": "archspec.commands.modelling:export",
    "weights": "archspec.commands.weights:weights_group",
    "import": "archspec.commands.importing:import_command",
    "train": "archspec.commands.training:train",
    "evaluate": "archspec.commands.training:evaluate",
    "predict": "archspec.commands.training:predict",
    "inspect": "archspec.commands.seeing:inspect_group",
    "apply": "archspec.commands.seeing:apply_command",
}


class LazyGroup(click.Group):
    """A group whose subcommands are imported from ``COMMANDS`` when first asked for."""

    def __init__(self, *args, lazy: dict[str, str], **kwargs):
        super().__init__(*args, **kwargs)
        self.lazy = lazy

    def list_commands(self, ctx):
        return list(self.lazy) + sorted(set(super().list_commands(ctx)) - set(self.lazy))

    def get_command(self, ctx, name):
        if name not in self.lazy:
            return super().get_command(ctx, name)
        module, attribute = self.lazy[name].split(":")
        command = getattr(importlib.import_module(module), attribute)
        command.name = name
        return command


@click.group(cls=LazyGroup, lazy=COMMANDS, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(package_name="archspec")
def main():
    """Convolutional networks in YAML: validate, summarise, draw, compile, train and inspect."""
    from .validity import remember_between_runs

    remember_between_runs()  # an unchanged spec skips the schema check's import next time


if __name__ == "__main__":
    main()
