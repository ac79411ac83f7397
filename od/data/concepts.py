"""`python -m od.data.concepts`: the documented name of the command od.commands.concepts (same
arguments). The concept dataset builder itself is od.solvers.concept_data."""
import sys

if __name__ == '__main__':
    from od.commands.concepts import main
    sys.exit(main())
