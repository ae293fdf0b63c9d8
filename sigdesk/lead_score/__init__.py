"""The lead score: admin rules turned into one SQL update, kept current by an outbox consumer."""
