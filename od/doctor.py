"""`python -m od.doctor`: the documented name of the command od.commands.doctor (same arguments)."""
import sys

from od.commands.doctor import *  # noqa: F401,F403  (names of the command module, for old imports)
from od.commands.doctor import main

if __name__ == '__main__':
    sys.exit(main())
