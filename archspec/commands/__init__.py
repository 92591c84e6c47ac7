"""One module per group of commands; ``archspec.cli`` imports a module only when its command runs."""
