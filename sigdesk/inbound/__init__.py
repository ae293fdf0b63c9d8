"""Inbound WhatsApp: the webhook endpoint and the one ingest path every delivery goes through."""
