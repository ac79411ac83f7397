"""`python -m od.clip`: the documented name of the command od.commands.clip (same arguments)."""
import sys

from od.commands.clip import *  # noqa: F401,F403  (names of the command module, for old imports)
from od.commands.clip import main

if __name__ == '__main__':
    sys.exit(main())
