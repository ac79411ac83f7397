"""`python -m od.make_ckpt`: the documented name of the command od.commands.make_ckpt (same arguments)."""
import sys

from od.commands.make_ckpt import *  # noqa: F401,F403  (names of the command module, for old imports)
from od.commands.make_ckpt import main

if __name__ == '__main__':
    sys.exit(main())
