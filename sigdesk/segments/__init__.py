"""Segments: the contact filter (one definition, compiled to SQL in one place), saved filters, the contacts
list's sorting and paging, and bulk actions on contacts."""
