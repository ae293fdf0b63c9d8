"""WhatsApp Cloud API: the Graph client, webhook verification and parsing. Knows nothing of Flask."""
