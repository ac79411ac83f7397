"""`python -m od.prep`: the documented name of the command od.commands.prep (same arguments)."""
import sys

from od.commands.prep import *  # noqa: F401,F403  (names of the command module, for old imports)
from od.commands.prep import main

if __name__ == '__main__':
    sys.exit(main())
