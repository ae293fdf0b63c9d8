"""SigDesk: a self-hosted WhatsApp CRM."""

__version__ = "0.1.0"
