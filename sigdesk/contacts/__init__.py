"""Contacts: who a customer is, the name SigDesk shows for them, their consent, and their erasure."""
