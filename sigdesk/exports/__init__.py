"""Exports of the business data: JSON Lines and CSV."""
