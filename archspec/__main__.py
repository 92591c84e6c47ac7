"""``python -m archspec``: the same as the ``archspec`` command (torchrun starts processes this way)."""
from .cli import main

if __name__ == "__main__":
    main()
