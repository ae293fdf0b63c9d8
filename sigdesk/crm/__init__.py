"""The Contacts section: the pages that bring contacts, segments, custom fields, lead score and merge together.

An entry point, not a feature others build on: it imports contacts, segments, custom_fields, lifecycle,
consent and lead_score, and nothing imports it back except the inbox's side panel (sigdesk.crm.services).
"""
