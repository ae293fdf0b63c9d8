#!/bin/sh
# /usr/bin/sigdesk: runs the bundle in /opt/sigdesk. Data lives in the per-user data dir
# (~/.local/share/SigDesk, or --data-dir / SIGDESK_DATA_DIR), never in /opt/sigdesk.
exec /opt/sigdesk/sigdesk "$@"
