"""`python -m od.app`: the documented name of the command od.commands.app (same arguments)."""
import sys

from od.commands.app import main

if __name__ == '__main__':
    sys.exit(main())
