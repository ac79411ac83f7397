"""Conditions placed on the LM's token steps: step s of the sequence gets frame s of the condition.

AudioCraft 1.3's fuser has one time-aligned method, `input_interpolate`: it interpolates the
whole condition [B, T_c, D] to the length of each call's input and adds it. In training (one
call over the whole sequence) that aligns the condition with the tokens; while generating, the
LM is called one step at a time (input length 1) and the streaming offset is ignored, so every
step gets the whole condition squashed into one frame (`squashes_while_streaming` checks this on
the installed release; od/conditioners/hooks.py pins it). A model trained that way generates
from a condition it never saw.

od's fuser adds a method of its own, `time` (config: `fuser.time: [<attribute>]`): the
condition comes at the LM's token rate (the conditioner's job: `TimeAlignedConditioner`), and
the call at streaming offset o with T input steps gets its frames [o, o + T) — zeros past its
end — in a teacher-forced forward and in streaming generation alike:

    condition [B, L, D] (frame s = token step s)  --slice [o, o + T)-->  input [B, T, D] += it

The LM's token rate is the compression model's frame rate, known only once the codec is
loaded: `bind(lm, frame_rate)` gives it to the time-aligned conditioners (od's solver and
ODMusicGen call it). Every other method goes to AudioCraft's fuser unchanged.
"""
from __future__ import annotations

import typing as tp

import torch
from audiocraft.modules import conditioners as ac

TIME = 'time'


class TimeAlignedConditioner:
    """Mixin of conditioners whose output has one frame per LM token step (fused by `time`)."""
    frame_rate: tp.Optional[float] = None   # the LM's token steps per second, set by `bind`

    def steps_per_second(self) -> float:
        if not self.frame_rate:
            raise RuntimeError(f"{type(self).__name__} needs the LM's token rate: build the model with od "
                               "(its solver or od.inference.load), which calls od.conditioners.time_aligned.bind")
        return float(self.frame_rate)


class ODConditionFuser(ac.ConditionFuser):
    """AudioCraft's fuser plus the `time` method (module docstring)."""
    FUSING_METHODS = ac.ConditionFuser.FUSING_METHODS + [TIME]

    def forward(self, input: torch.Tensor, conditions: tp.Dict[str, ac.ConditionType]):
        timed = {name: c for name, c in conditions.items() if self.cond2fuse.get(name) == TIME}
        if timed:
            offsets = self._streaming_state.get('offsets')
            offset = 0 if offsets is None else int(offsets[0])
            if offsets is not None and not bool((offsets == offset).all()):
                raise ValueError("time-aligned conditions need one streaming offset for the whole batch")
            steps = input.shape[1]
            for cond, _ in timed.values():                               # [B, L, D] (masked by its conditioner)
                part = cond[:, offset:offset + steps]
                if part.shape[1] < steps:                                # past the condition's end: nothing
                    part = torch.nn.functional.pad(part, (0, 0, 0, steps - part.shape[1]))
                input = input + part.to(input)
        rest = {name: c for name, c in conditions.items() if name not in timed}
        return super().forward(input, rest)   # the other methods; advances the streaming offset


def get_condition_fuser(cfg) -> ODConditionFuser:
    """Replacement for AudioCraft's `builders.get_condition_fuser` (same contract) that knows
    `fuser.time` (absent: empty, so every existing config builds the same fuser)."""
    fuser_cfg = getattr(cfg, 'fuser')
    methods = ['sum', 'cross', 'prepend', 'input_interpolate']
    fuse2cond = {k: list(fuser_cfg[k]) for k in methods}
    fuse2cond[TIME] = list(fuser_cfg.get(TIME) or [])
    kwargs = {k: v for k, v in fuser_cfg.items() if k not in methods + [TIME]}
    return ODConditionFuser(fuse2cond=fuse2cond, **kwargs)


def bind(lm: torch.nn.Module, frame_rate: float) -> int:
    """Tell every time-aligned conditioner of `lm` the LM's token rate; returns how many.
    Refuses a `time`-fused condition whose conditioner is not time-aligned."""
    provider, fuser = lm.condition_provider, lm.fuser
    count = 0
    for name, conditioner in provider.conditioners.items():
        if isinstance(conditioner, TimeAlignedConditioner):
            conditioner.frame_rate = float(frame_rate)
            count += 1
        elif getattr(fuser, 'cond2fuse', {}).get(name) == TIME:
            raise ValueError(f"fuser.time lists '{name}', whose conditioner ({type(conditioner).__name__}) does "
                             "not give one frame per token step: fuse it with cross/sum/prepend instead")
    if count and not isinstance(fuser, ODConditionFuser):
        raise ValueError("this LM's fuser is AudioCraft's: time-aligned conditioners need od's (fuser.time), "
                         "built by od's registry (od.conditioners.hooks.install())")
    return count


def squashes_while_streaming() -> bool:
    """Whether AudioCraft's `input_interpolate` gives a streaming step the whole condition squashed
    into one frame instead of its own frame (True on 1.3.0: the reason `time` exists)."""
    fuser = ac.ConditionFuser({'input_interpolate': ['c']})
    cond = torch.arange(4.).view(1, 4, 1)                                 # frames 0, 1, 2, 3
    with fuser.streaming():
        seen = [float(fuser(torch.zeros(1, 1, 1), {'c': (cond, torch.ones(1, 4))})[0]) for _ in range(4)]
    return seen != [0., 1., 2., 3.]
