"""The HTTP API (FastAPI) and the live map page."""
