"""Custom contact fields: admins define them, every contact may carry a value of each."""
