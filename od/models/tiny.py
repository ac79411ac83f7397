"""`python -m od.models.tiny`: the documented name of od.inference.tiny (same arguments)."""
import sys

from od.inference.tiny import *  # noqa: F401,F403  (names of the tiny-model writers, for old imports)
from od.inference.tiny import main

if __name__ == '__main__':
    sys.exit(main())
