"""Gunicorn reads this file from the working directory: it logs in the service's JSON format."""
import os

from config.logging import logging_config

logconfig_dict = logging_config(os.environ.get("LOG_LEVEL") or "INFO")
