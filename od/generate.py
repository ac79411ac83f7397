"""Prompt (and/or an image, a video window, a reference audio) -> wav.

    python -m od.generate "an upbeat chiptune track" --duration 10 --output out.wav
    python -m od.generate --video clip.mp4 --start 5 --model checkpoints/mymodel --output clip.wav
    python -m od.generate "a calm piece" --image photo.jpg --model checkpoints/mymodel
    python -m od.generate "a calm piano piece in the style of <8bit>" \
        --concepts checkpoints/concepts/<dataset>/<sig>/best.pt --model checkpoints/small_t5.th
    python -m od.generate "lo-fi funk" --denoise --output funk.wav     # funk.wav cleaned, funk.raw.wav kept

`--model` is an od export (`python -m od.export`), a make_ckpt / Dora checkpoint, `//sig/<sig>`,
or upstream MusicGen weights by hub id (`facebook/musicgen-small`, from the Hugging Face cache
or the reference dir; never downloaded). Inputs the model has no conditioner for are refused.
"""
from __future__ import annotations

from .core import environment

environment.setup()  # the command's start-up, before anything imports AudioCraft (od/core/environment.py)

import argparse
import datetime
import re
import sys
import typing as tp
from pathlib import Path

from .conditioners.concepts import PLACEHOLDER
from .core.atomic import DiskFullError
from .core.cli import fail
from .core.environment import MissingWeightsError
from .inference.generation import check_source, generate, use_concepts, write_audio
from .inference.options import add_denoise_args, add_generation_args, build_denoiser_for, load_for_generation


def default_output(prompt: tp.Optional[str], media: tp.Optional[str]) -> Path:
    stamp = datetime.datetime.now().strftime('%y%m%d_%H%M%S')
    slug = re.sub(r'[^a-zA-Z0-9]+', '_', prompt or Path(media or 'unconditional').stem).strip('_')[:60]
    return Path('samples') / stamp / f'{slug or "generated"}.wav'


def main(argv: tp.Optional[tp.Sequence[str]] = None) -> int:
    parser = argparse.ArgumentParser(
        prog='python -m od.generate', description=__doc__.split('\n\n')[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog='examples:\n  python -m od.generate "an upbeat chiptune track" --duration 10 --output out.wav\n'
               '  python -m od.generate --video clip.mp4 --start 5 --model checkpoints/mymodel --output clip.wav')
    parser.add_argument('prompt', nargs='?', default=None, help="text description (models with a text conditioner)")
    media = parser.add_mutually_exclusive_group()
    media.add_argument('--video', help="condition on this video's window [--start, --start + --duration)")
    media.add_argument('--image', help="condition on an image")
    media.add_argument('--audio', help="condition on a reference audio (models with a CLAP conditioner)")
    parser.add_argument('--start', type=float, default=0., help="window start in the video/audio, seconds")
    parser.add_argument('--duration', type=float, default=10., help="seconds to generate (default: %(default)s; with --video, at most to the video's end)")
    parser.add_argument('--output', help="wav to write (default: samples/<YYMMDD_HHMMSS>/<prompt>.wav)")
    parser.add_argument('--concepts', nargs='+', default=[], metavar='FILE',
                        help="learned concepts (textual inversion: checkpoints/concepts/<dataset>/<sig>/"
                             "best.pt) whose <name> the prompt may use")
    add_generation_args(parser, default_model='facebook/musicgen-small')
    add_denoise_args(parser)
    args = parser.parse_args(argv)
    source = args.video or args.image or args.audio
    if args.prompt is None and source is None:
        parser.error("give a prompt and/or --video/--image/--audio")
    output = Path(args.output) if args.output else default_output(args.prompt, source)
    try:
        check_source(args.image, args.audio)  # inputs first: a model takes half a minute to load
        if args.video:  # stop at the video's end, like od.clip
            from .data.frames import FrameError, video_window
            try:
                args.duration = video_window(args.video, args.start, args.duration)
            except FrameError as exc:
                raise ValueError(str(exc)) from exc
        from .inference.loaders import locate_model
        locate_model(args.model)
        denoiser = build_denoiser_for(args)
        model = load_for_generation(args, args.duration)
        if args.concepts or (args.prompt and PLACEHOLDER.search(args.prompt)):
            use_concepts(model, args.concepts, args.prompt)
        wav = generate(model, args.prompt, source, args.start, args.seed, progress=sys.stderr.isatty())
        write_audio(output, wav, model.sample_rate, length=round(args.duration * model.sample_rate))
    except (ValueError, FileNotFoundError, MissingWeightsError, DiskFullError) as exc:
        return fail(f"{exc}\nNothing was written.")
    print(f"wrote {output} ({args.duration:g} s, {model.sample_rate} Hz)")
    if denoiser is not None:
        from .data.denoise import denoise_file
        _, raw = denoise_file(output, denoiser)
        print(f"denoised it with {denoiser.name}; the original is {raw}")
    return 0


if __name__ == '__main__':
    sys.exit(main())
