"""Full-text search over messages and contacts."""
