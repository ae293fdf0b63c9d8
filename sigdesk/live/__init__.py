"""Live updates to open inboxes: the server-sent events stream of the event bus, filtered by who may see what."""
