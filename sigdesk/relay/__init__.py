"""The relay tunnel: a small public service that keeps Meta's webhooks until the desktop pulls them.

server.py, store.py, installs.py and models.py run on the relay (no CRM, no app secret);
client.py and receive.py run inside SigDesk; views.py is SigDesk's Settings → Inbound page.
"""
