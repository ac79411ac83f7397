"""od's solvers: AudioCraft's, subclassed where od needs more."""
import typing as tp


def get_solver(cfg) -> tp.Any:
    """Solver for `cfg.solver`: od's subclass where there is one, else AudioCraft's."""
    if cfg.solver in ('musicgen', 'lm'):
        from .musicgen import MusicGenSolver
        return MusicGenSolver(cfg)
    if cfg.solver == 'textual_inversion':
        from .textual_inversion import TextualInversionSolver
        return TextualInversionSolver(cfg)
    from audiocraft import solvers
    return solvers.get_solver(cfg)
