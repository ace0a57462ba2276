"""Pydantic request and response models of the master API."""
