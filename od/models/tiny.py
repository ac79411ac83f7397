"""`python -m od.models.tiny`: the documented name of the command od.commands.tiny (same arguments)."""
import sys

from od.commands.tiny import main
from od.inference.tiny import *  # noqa: F401,F403  (names of the tiny-model writers, for old imports)

if __name__ == '__main__':
    sys.exit(main())
