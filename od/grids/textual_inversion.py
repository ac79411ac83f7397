"""Textual-inversion sweep (seed 000 swept 5/10/20 tokens with wandb): tokens_num x lr x concepts.

    python -m od.concepts example_concepts dataset/example_concepts_raw --synthesise chiptune ambient
    dora grid textual_inversion --dry_run --init   # list the XPs without launching
    dora grid textual_inversion                    # launch them on SLURM

Tensorboard is on (logs/xps/<sig>/tensorboard); add `logging.log_wandb=true wandb.project=<p>`
to the bound options for wandb. Learned rows land in checkpoints/concepts/<dataset>/<sig>/.
Edit DATASET / SOLVER / CONCEPT_SETS for your data (solver=musicgen/textual_inversion with a
continue_from checkpoint for a real MusicGen).
"""
from dora import Explorer, Launcher

DATASET = 'concepts/example_concepts'
SOLVER = 'musicgen/textual_inversion'
CONCEPT_SETS = [[], ['chiptune'], ['ambient']]   # [] = every concept of the dataset


@Explorer
def explorer(launcher: Launcher):
    launcher.slurm_(gpus=1)  # partition, CPUs, memory, time: the team file's cluster entry
    launcher.bind_({'solver': SOLVER, 'dset': DATASET, 'logging.log_tensorboard': True})
    for tokens_num in [5, 10, 20]:
        for lr in [5e-3, 1e-2]:
            for concepts in CONCEPT_SETS:
                launcher({'textual_inversion.tokens_num': tokens_num, 'optim.lr': lr,
                          'textual_inversion.concepts': concepts})
