"""Contact imports from CSV and Excel files: reading, mapping, the run in the background worker, and undo."""
