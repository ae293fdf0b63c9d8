"""The Analytics section: sales, conversations, team and contacts figures over a chosen period."""
