"""`python -m od.data.concepts`: the documented name of od.commands.concepts (same arguments)."""
import sys

from od.commands.concepts import *  # noqa: F401,F403  (names of the concept dataset builder, for old imports)
from od.commands.concepts import main

if __name__ == '__main__':
    sys.exit(main())
