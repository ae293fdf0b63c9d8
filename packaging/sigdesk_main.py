"""The frozen executable's entry point: the same `sigdesk` command as the pip-installed one, and the
broadcasts' sending process when started as one (sigdesk.broadcasts.sender.command)."""

import sys

from sigdesk.broadcasts import sender
from sigdesk.cli import main

if __name__ == "__main__":
    if sys.argv[1:2] == [sender.FLAG]:
        sender.main()
    else:
        main()
