"""`python -m od.generate`: the documented name of the command od.commands.generate (same arguments)."""
import sys

from od.commands.generate import *  # noqa: F401,F403  (names of the command module, for old imports)
from od.commands.generate import main

if __name__ == '__main__':
    sys.exit(main())
