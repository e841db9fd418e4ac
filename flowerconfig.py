"""Flower reads this file from the working directory at start (its ``--conf`` default).

Flower never starts open: its login comes from ``FLOWER_BASIC_AUTH`` in the environment (Flower
reads ``FLOWER_*`` variables itself), never from its command line, where ``ps`` would show it to
every local user. `make run` generates one when none is set.
"""

import os

if not os.environ.get("FLOWER_BASIC_AUTH"):
    raise SystemExit("FLOWER_BASIC_AUTH is not set: expected user:password (Flower never starts without a login)")
