"""The prediction feature: accept an image, queue it, report its result."""
