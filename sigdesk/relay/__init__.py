"""The relay service: a small public server that keeps Meta's webhooks until the desktop pulls them.

Everything here runs on the relay's VPS: server.py (WSGI app), store.py (events), installs.py,
models.py and migrations/ (its own database), cli.py (`sigdesk relay serve`, `add-install`, ...).
It imports nothing of the CRM and holds no app secret; its dependencies are listed in
packaging/relay/requirements.txt. SigDesk's side (pairing, the Puller, Settings → Inbound) is
sigdesk.relay_client.
"""
