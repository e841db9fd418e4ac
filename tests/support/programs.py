"""Running the project's commands as the Procfile and Makefile do, with stand-in programs."""

import os
from pathlib import Path

from config.settings import PROJECT_ROOT


def fake_program(path: Path, body: str) -> None:
    path.write_text(f"#!/bin/sh\n{body}\n")
    path.chmod(0o755)


def clean_env(**extra) -> dict:
    env = {key: value for key, value in os.environ.items() if not key.startswith(("FLOWER_", "MAKE"))}
    return {**env, **extra}


def procfile_command(name: str) -> str:
    [command] = [
        line.split(":", 1)[1]
        for line in (PROJECT_ROOT / "Procfile").read_text().splitlines()
        if line.startswith(f"{name}:")
    ]
    return command
