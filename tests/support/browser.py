"""Where the system chromium is and how Playwright starts it, for the web page and Flower tests."""

import os
from pathlib import Path

from config.settings import PROJECT_ROOT

CHROMIUM = Path(os.environ.get("CHROMIUM_PATH", "/usr/bin/chromium"))
ARTIFACTS = Path(os.environ.get("ARTIFACTS_DIR", PROJECT_ROOT / "tmp" / "artifacts"))
# Playwright's own browser download cannot work offline; it drives the system chromium instead.
CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
