"""``python -m watchdog``: the same command line as the ``watchdog`` script."""

import sys

from watchdog.cli.main import main

if __name__ == "__main__":
    sys.exit(main())
