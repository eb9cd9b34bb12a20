"""``python -m attnpotts``: the ``attnpotts`` command (:func:`attnpotts.cli.main.entry_point`)."""

from .cli.main import entry_point

if __name__ == "__main__":  # pragma: no cover
    entry_point()
