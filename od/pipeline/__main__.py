"""`python -m od.pipeline`: the documented name of the command od.commands.pipeline."""
import sys

if __name__ == '__main__':
    from od.commands.pipeline import main
    sys.exit(main())
