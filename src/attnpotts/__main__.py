"""``python -m attnpotts``: the ``attnpotts`` command (:func:`attnpotts.cli.main`)."""

import sys

from .cli.main import main

if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
