"""``python -m config.check``: `make run`'s first step, so a bad setting stops it before any migration or process.

It loads the settings as every process will (environment plus ``.env``) and prints the first bad
value in one line (``NAME='value' is not valid: expected ...``) instead of a traceback from each
process that reads it.
"""

import sys

from config.settings import load_settings


def main() -> int:
    try:
        load_settings()
    except ValueError as error:
        print(f"configuration error: {error}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
