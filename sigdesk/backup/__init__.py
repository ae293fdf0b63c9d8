"""Encrypted, verifiable backups and restores, portable between SQLite and MySQL."""
