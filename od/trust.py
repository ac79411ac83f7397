"""`python -m od.trust`: the documented name of the command od.commands.trust (same arguments)."""
import sys

from od.commands.trust import *  # noqa: F401,F403  (names of the command module, for old imports)
from od.commands.trust import main

if __name__ == '__main__':
    sys.exit(main())
