"""One module per CLI command; each is a few lines over the Python API."""
