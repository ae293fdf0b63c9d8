"""Live updates: an in-process event bus and the server-sent events stream."""
