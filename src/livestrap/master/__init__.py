"""The master: REST API, netboot serving, discovery, build jobs (FastAPI + SQLAlchemy)."""
