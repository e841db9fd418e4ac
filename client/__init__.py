"""Command-line client of the prediction API: ``python -m client batch DIR --url URL``."""
