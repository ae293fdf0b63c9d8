"""The frozen executable's entry point: the same `sigdesk` command as the pip-installed one."""

from sigdesk.cli import main

if __name__ == "__main__":
    main()
