"""`python -m od.eval`: the documented name of the command od.commands.eval (same arguments)."""
import sys

from od.commands.eval import *  # noqa: F401,F403  (names of the command module, for old imports)
from od.commands.eval import main

if __name__ == '__main__':
    sys.exit(main())
