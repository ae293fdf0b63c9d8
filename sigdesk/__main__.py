from sigdesk.cli import main

main()
