"""`python -m od.pipeline`: the documented name of the command od.commands.pipeline."""
import sys

from od.commands.pipeline import main

if __name__ == '__main__':
    sys.exit(main())
