"""Marketing consent: every opt-in and opt-out as an event, the current state derived from the latest."""
