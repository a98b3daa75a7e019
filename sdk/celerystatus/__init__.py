"""Python SDK for the celery-status service."""
