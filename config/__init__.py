"""Configuration read from the environment (see .env.example)."""
