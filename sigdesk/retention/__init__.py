"""Retention: old messages, audit entries, sign-in history and backups removed on schedule."""
