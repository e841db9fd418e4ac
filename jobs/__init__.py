"""What the web and the worker share."""
