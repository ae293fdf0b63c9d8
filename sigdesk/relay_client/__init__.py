"""SigDesk's side of the relay tunnel: pairing, the Puller that drains the relay, and Settings → Inbound.

The relay service itself is sigdesk.relay, which runs on a VPS without the CRM; this package runs
inside SigDesk and talks to it only over HTTP.
"""
