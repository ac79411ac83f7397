"""`python -m od.export`: the documented name of the command od.commands.export (same arguments)."""
import sys

from od.commands.export import *  # noqa: F401,F403  (names of the command module, for old imports)
from od.commands.export import main

if __name__ == '__main__':
    sys.exit(main())
