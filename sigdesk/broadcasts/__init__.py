"""Broadcasts: approved templates sent to a frozen audience, paced inside Meta's limits, crash-safe."""
