"""Bad inputs, tool by tool. Each file a tool is given counts as one input; it is handled when
the run ends cleanly (exit 0 with the file skipped and named, or non-zero with a message and no
traceback) and whatever the tool kept from it is usable (the kept audio decodes for the length
the manifest says, the tokens and caches load)."""
from __future__ import annotations

import json
import os
import shutil
import typing as tp
from pathlib import Path

from . import checks
from .checks import od, run
from .fixtures import DEBUG_FAST, Fixtures, datasource
from .media import EITHER, KEEP, SKIP, Case, audio_cases, corrupt, video_cases, write_audio, write_video


def judge(case: Case, res: checks.Run, kept: tp.Optional[bool], problem: tp.Optional[str] = None) -> tp.Tuple[bool, str]:
    """(handled, why not) for one input of a run. `kept`: whether the tool kept it (None: the
    tool's output does not say; then a skipped file must only be named)."""
    if res.traceback:
        return False, f"traceback: {res.tail()}"
    if res.rc != 0:
        return False, f"exit {res.rc}: {res.tail()}"
    if kept and problem:
        return False, f"kept but unusable: {problem}"
    if kept is None:
        return (True, '') if case.expect != SKIP or res.mentions(case.token) else (False, 'not named in the output')
    if case.expect == KEEP and not kept:
        return False, f"a good file was left out{' (named)' if res.mentions(case.token) else ''}"
    if case.expect == SKIP and kept:
        return False, "kept although it cannot be used"
    if not kept and not res.mentions(case.token):
        return False, "left out without being named"
    return True, ''


def usable_audio(entry: dict) -> tp.Optional[str]:
    """Why a manifest entry would fail AudioCraft's loader, or None: the file decodes, and for at
    least the duration the manifest claims."""
    from audiocraft.data.audio import audio_read

    from od.data.media import scan_audio
    try:
        scan = scan_audio(entry['path'])
        if entry['duration'] > scan.seconds + 0.1:
            return f"manifest says {entry['duration']:.2f} s, {scan.seconds:.2f} s decode"
        wav, _ = audio_read(entry['path'], seek_time=max(0., entry['duration'] - 1.), duration=1.)
        if wav.numel() == 0:
            return 'nothing decodes at the end the manifest claims'
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"
    return None


def _kept_by_stem(manifest: Path) -> tp.Dict[str, dict]:
    if not manifest.exists():
        return {}
    return {Path(e['path']).name: e for e in checks.manifest_entries(manifest)}


def manifest_inputs(suite, fx: Fixtures) -> None:
    tool = 'od.manifest'
    folder = fx.path('inputs', 'manifest_audio')
    cases = audio_cases(folder, sidecars=True)
    out = fx.path('outputs', 'manifest_audio')
    res = run(od('od.manifest', str(folder), str(out), '--require', '.json'))
    kept = _kept_by_stem(out / 'data.jsonl')
    for case in cases:
        entry = kept.get(case.path.name)
        suite.input(tool, case, *judge(case, res, entry is not None, entry and usable_audio(entry)))
    folder = fx.path('inputs', 'manifest_video')
    cases = video_cases(folder, with_audio_beside=True)
    out = fx.path('outputs', 'manifest_video')
    res = run(od('od.manifest', str(folder), str(out), '--require', '.json', 'video'))
    kept = _kept_by_stem(out / 'data.jsonl')
    for case in cases:
        entry = kept.get(case.path.with_suffix('.wav').name)
        problem = None
        if entry is not None:
            problem = entry and usable_audio(entry) or checks.check_file(case.path, strict=False)
        suite.input(tool, case, *judge(case, res, entry is not None, problem))
    # A folder where nothing is usable, and a folder that does not exist: a message, exit 2.
    bad = fx.path('inputs', 'manifest_allbad')
    bad.mkdir(parents=True, exist_ok=True)
    corrupt(bad / 'allbad_one.wav')
    for name, folder in [('folder/all-files-bad', bad), ('folder/missing', fx.path('inputs', 'nope_missing'))]:
        res = run(od('od.manifest', str(folder), str(fx.path('outputs', 'manifest_none'))))
        suite.input_result(tool, name, res.rc == 2 and res.message_ok() and res.mentions(folder.name), res.tail())


def ingest_inputs(suite, fx: Fixtures) -> None:
    from od.data.ingest import safe_id
    tool = 'od.ingest'
    for kind, make in [('audio', lambda f: audio_cases(f)), ('video', lambda f: video_cases(f))]:
        raw = fx.path('inputs', f'ingest_{kind}')
        cases = make(raw)
        if kind == 'video':
            cases.append(Case('video/no-audio-track', write_video(raw / 'vnoaudio.mp4', audio=False), SKIP,
                              'vnoaudio'))
        dataset, egs, config = fx.path('outputs', f'ingest_{kind}', 'dataset'), fx.path('outputs', f'ingest_{kind}', 'egs'), \
            fx.path('outputs', f'ingest_{kind}', 'config')
        res = run(od('od.ingest', str(raw), '--name', 'bad', '--valid-fraction', '0.3', '--no-analysis',
                     '--dataset-dir', str(dataset), '--egs-dir', str(egs), '--config-dir', str(config)))
        kept = {}
        for split in ('train', 'valid'):
            kept.update({Path(k).stem: v for k, v in _kept_by_stem(egs / 'bad' / split / 'data.jsonl').items()})
        problems = checks.outputs_problems(dataset, strict=False)
        for case in cases:
            key = safe_id(os.fsdecode(case.path.relative_to(raw).with_suffix('')))
            entry = kept.get(key)
            problem = usable_audio(entry) if entry else None
            problem = problem or next((p for p in problems if f'/{key}.' in p), None)
            suite.input(tool, case, *judge(case, res, entry is not None, problem))


def concepts_inputs(suite, fx: Fixtures) -> None:
    tool = 'od.concepts'
    root = fx.path('inputs', 'concepts')
    cases = audio_cases(root / 'bad')
    for i in range(2):
        write_audio(root / 'other' / f'o_{i}.wav', seed=i)
    out = fx.path('outputs', 'concepts')
    res = run(od('od.concepts', 'bad', str(root), '--chunk', '1', '--compression-model',
                 '//pretrained/debug_compression_model', '--dataset-dir', str(out / 'dataset'),
                 '--egs-dir', str(out / 'egs'), '--config-dir', str(out / 'config')))
    manifest = out / 'egs' / 'bad' / 'metadata_train.json'
    entries = json.loads(manifest.read_text()) if manifest.exists() else []
    problems = checks.outputs_problems(out)
    for case in cases:
        track = f"bad/{os.fsdecode(case.path.relative_to(root / 'bad'))}"
        mine = [e for e in entries if e['track_id'] == track]
        problem = next((p for e in mine for p in problems if Path(e['encoded_path']).stem in p), None)
        suite.input(tool, case, *judge(case, res, bool(mine), problem))


MUSICCAPS_ROWS = [  # (case name, ytid, start, end, audio file written for it, expect)
    ('good/train', 'goodTrain01', '0', '3', 'good', KEEP),
    ('good/valid', 'goodValid01', '0', '3', 'good', KEEP),
    ('ytid/path', '../escape', '0', '3', 'good', SKIP),
    ('ytid/empty', '', '0', '3', None, SKIP),
    ('times/inf', 'infEnd00001', '0', '1e999', 'good', SKIP),
    ('times/nan', 'nanStart001', 'nan', '3', 'good', SKIP),
    ('times/text', 'textStart01', 'ten', '3', 'good', SKIP),
    ('times/reversed', 'reversed001', '3', '0', 'good', SKIP),
    ('audio/missing', 'missingAud1', '0', '3', None, SKIP),
    ('audio/corrupt', 'corruptAud1', '0', '3', 'corrupt', SKIP),
    ('audio/truncated', 'truncAudio1', '0', '3', 'truncated', EITHER),
    ('audio/zero-length', 'emptyAudio1', '0', '3', 'empty', SKIP),
    ('audio/silent', 'silentAud01', '0', '3', 'silent', SKIP),
]


def musiccaps_inputs(suite, fx: Fixtures) -> None:
    import csv

    import numpy as np
    import soundfile as sf

    from .media import SR, truncate
    tool = 'od.musiccaps'
    base = fx.path('inputs', 'musiccaps')
    audio = base / 'audio'
    audio.mkdir(parents=True, exist_ok=True)
    for _, ytid, _, _, kind, _ in MUSICCAPS_ROWS:
        path = audio / f'{ytid or "blank"}.wav'
        if kind == 'good':
            write_audio(path, seed=len(ytid))
        elif kind == 'corrupt':
            corrupt(path)
        elif kind == 'truncated':
            truncate(write_audio(path, seconds=6.0), 0.4)
        elif kind == 'empty':
            path.write_bytes(b'')
        elif kind == 'silent':
            sf.write(path, np.zeros(3 * SR, np.float32), SR)
    rows = [{'ytid': y, 'start_s': s, 'end_s': e, 'aspect_list': "['calm']", 'caption': 'a calm tune',
             'is_eval': 'true' if 'Valid' in y else 'false'} for _, y, s, e, _, _ in MUSICCAPS_ROWS]
    with open(base / 'musiccaps.csv', 'w', newline='') as f:
        writer = csv.DictWriter(f, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)
    out = fx.path('outputs', 'musiccaps')

    def cmd(csv_path: Path, name: str) -> tp.List[str]:
        return od('od.musiccaps', str(csv_path), '--audio-dir', str(audio), '--name', name,
                  '--valid-column', 'is_eval', '--out-dir', str(out / name / 'dataset'),
                  '--egs-dir', str(out / name / 'egs'), '--config-dir', str(out / name / 'config'))
    res = run(cmd(base / 'musiccaps.csv', 'mc'))
    kept = {}
    for split in ('train', 'valid'):
        kept.update({Path(k).stem: v for k, v in _kept_by_stem(out / 'mc' / 'egs' / split / 'data.jsonl').items()})
    problems_file = out / 'mc' / 'dataset' / 'import_problems.tsv'
    res.out += problems_file.read_text() if problems_file.exists() else ''  # where each record is named
    for line, (name, ytid, *_, expect) in enumerate(MUSICCAPS_ROWS, start=2):
        case = Case(name, audio / f'{ytid}.wav', expect, ytid or f'(line {line})')
        entry = kept.get(ytid) if ytid else None
        suite.input(tool, case, *judge(case, res, entry is not None, entry and usable_audio(entry)))
    # Whole files that are not a MusicCaps CSV.
    (base / 'nonutf8.csv').write_bytes(b'ytid,start_s,end_s,aspect_list,caption\nab\xff\xfe,0,3,x,y\n')
    (base / 'columns.csv').write_text('id,start,end\nx,0,3\n')
    corrupt(base / 'garbage.csv')
    (base / 'empty.csv').write_text('')
    for name, path in [('csv/non-utf8', base / 'nonutf8.csv'), ('csv/missing-columns', base / 'columns.csv'),
                       ('csv/binary', base / 'garbage.csv'), ('csv/zero-length', base / 'empty.csv'),
                       ('csv/missing', base / 'nope.csv')]:
        res = run(cmd(path, path.stem))
        suite.input_result(tool, name, res.rc != 0 and res.message_ok() and res.mentions(path.name), res.tail())


def _hand_manifest(path: Path, audio: tp.Sequence[Path], extra_lines: tp.Sequence[str] = ()) -> Path:
    """A manifest written by hand (or by an older od): every file listed as 3 s at 32 kHz."""
    path.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps({'path': os.fsdecode(p), 'duration': 3.0, 'sample_rate': 32000, 'amplitude': None,
                         'weight': None, 'info_path': None}) for p in audio]
    (path / 'data.jsonl').write_text(''.join(line + '\n' for line in [*lines, *extra_lines]),
                                     errors='surrogateescape')
    return path


BAD_LINES = [('manifest/not-json', '{"path": "/x.wav", "duration": 3'),
             ('manifest/missing-file', json.dumps({'path': '/nonexistent/od_faults_missing.wav', 'duration': 3.0,
                                                   'sample_rate': 32000})),
             ('manifest/no-path-field', json.dumps({'duration': 3.0})),
             ('manifest/array-line', '[1, 2, 3]')]
QUICK_LINES = ['manifest/not-json', 'manifest/missing-file']


def prep_inputs(suite, fx: Fixtures) -> None:
    tool = 'od.prep'
    folder = fx.path('inputs', 'prep_video')
    cases = video_cases(folder, with_audio_beside=True)
    egs = _hand_manifest(fx.path('inputs', 'prep_video_egs', 'train'), [c.path.with_suffix('.wav') for c in cases])
    cache = fx.path('outputs', 'prep_cache')
    res = run(od('od.prep', *fx.clip_args(egs.parent, cache, valid='train')))
    problems = checks.outputs_problems(cache)
    for case in cases:
        suite.input(tool, case, *judge(case, res, None, problems[0] if problems else None))
    folder = fx.path('inputs', 'prep_audio')
    cases = [c for c in audio_cases(folder, measured=True) if c.path.is_file() or c.path.is_symlink()]
    egs = _hand_manifest(fx.path('inputs', 'prep_audio_egs', 'train'), [c.path for c in cases])
    cache = fx.path('outputs', 'prep_clap_cache')
    res = run(od('od.prep', *fx.clap_args(egs.parent, cache, valid='train')))
    problems = checks.outputs_problems(cache)
    for case in cases:
        suite.input(tool + ' (clap)', case, *judge(case, res, None, problems[0] if problems else None))
    good = [fx.colors / 'dataset' / 'train' / p.name for p in sorted((fx.colors / 'dataset' / 'train').glob('*.wav'))]
    for name, line in suite.sample(BAD_LINES, QUICK_LINES, key=lambda x: x[0]):
        egs = _hand_manifest(fx.path('inputs', f'prep_{name.replace("/", "_")}', 'train'), good[:2], [line])
        res = run(od('od.prep', *fx.clip_args(egs.parent, fx.path('outputs', 'prep_lines_cache'), valid='train')))
        ok = res.message_ok() and (res.rc == 0 or res.mentions('data.jsonl'))
        suite.input_result(tool, name, ok, res.tail())


def eval_inputs(suite, fx: Fixtures) -> None:
    tool = 'od.eval'
    folder = fx.path('inputs', 'eval_reference')
    cases = audio_cases(folder, measured=True)
    base = ['--generated', str(fx.good_audio), '--clap-model', str(fx.clap)]
    out = fx.path('outputs', 'eval')
    res = run(od('od.eval', '--reference', str(folder), *base, '--metrics', 'fad_clap',
                 '--stats-cache', str(out / 'cache'), '--out', str(out / 'report.json')))
    problem = checks.check_file(out / 'report.json') if (out / 'report.json').exists() else 'no report'
    for case in cases:
        suite.input(tool, case, *judge(case, res, None, problem if res.rc == 0 else None))
    if fx.vggish is not None:
        res = run(od('od.eval', '--reference', str(folder), '--generated', str(fx.good_audio), '--metrics',
                     'fad_vggish', '--vggish-checkpoint', str(fx.vggish), '--workers', '1',
                     '--stats-cache', str(out / 'cache'), '--out', str(out / 'vggish.json')))
        for case in cases:
            suite.input(tool + ' (vggish)', case, *judge(case, res, None))
    else:
        suite.skipped('od.eval (vggish): no FAD environment (.venv-fad)')
    good = sorted(fx.good_audio.glob('*.wav'))
    for name, line in suite.sample(BAD_LINES, QUICK_LINES, key=lambda x: x[0]):
        egs = _hand_manifest(fx.path('inputs', f'eval_{name.replace("/", "_")}'), good, [line])
        res = run(od('od.eval', '--reference', str(egs), *base, '--metrics', 'fad_clap'))
        ok = res.message_ok() and (res.rc == 0 or res.mentions('data.jsonl'))
        suite.input_result(tool, name, ok, res.tail())
    missing = fx.path('inputs', 'eval_missing_ref')
    for name, args, token in [
            ('reference/missing', ['--reference', str(missing), *base, '--metrics', 'fad_clap'], missing.name),
            ('generated/missing', ['--reference', str(fx.good_audio), '--generated', str(missing), '--clap-model',
                                   str(fx.clap), '--metrics', 'fad_clap'], missing.name),
            ('weights/clap-missing', ['--reference', str(fx.good_audio), '--generated', str(fx.good_audio),
                                      '--clap-model', str(missing), '--metrics', 'fad_clap'], missing.name),
            ('weights/vggish-missing', ['--reference', str(fx.good_audio), '--generated', str(fx.good_audio),
                                        '--vggish-checkpoint', str(missing / 'v.ckpt'), '--metrics', 'fad_vggish'],
             missing.name),
            ('texts/missing', ['--reference', str(fx.good_audio), '--generated', str(folder), '--clap-model',
                               str(fx.clap), '--metrics', 'clap_score'], 'clap_score')]:
        res = run(od('od.eval', *args))
        suite.input_result(tool, name, res.rc != 0 and res.message_ok() and res.mentions(token), res.tail())


def analysis_inputs(suite, fx: Fixtures) -> None:
    import numpy as np
    tool = 'od.embeddings'
    root = fx.path('inputs', 'analysis')
    cases = audio_cases(root / 'audio_bad', measured=True) + video_cases(root / 'video_bad')
    for i in range(3):
        write_audio(root / 'audio_good' / f'ag_{i}.wav', seed=10 + i)
    npy = root / 'vectors'
    npy.mkdir(parents=True, exist_ok=True)
    for i in range(3):
        np.save(npy / f'vec_{i}.npy', np.random.default_rng(i).normal(size=8).astype(np.float32))
    np.save(npy / 'npypickle.npy', np.array([{'a': 1}], dtype=object), allow_pickle=True)
    np.save(npy / 'npyshape.npy', np.zeros((2, 3, 4), np.float32))
    np.save(npy / 'npynan.npy', np.full(8, np.nan, np.float32))
    (npy / 'npytrunc.npy').write_bytes((npy / 'vec_0.npy').read_bytes()[:70])
    cases += [Case(f'npy/{n}', npy / f'npy{n}.npy', SKIP, f'npy{n}') for n in ('pickle', 'shape', 'nan', 'trunc')]
    out = fx.path('outputs', 'analysis')
    res = run(od('od.embeddings', '--dataset', str(root), '--encoders', f'mel,clip={fx.clip},npy',
                 '--out', str(out), '--cache-dir', str(out / 'cache')))
    listed = (out / 'skipped.txt').read_text(errors='replace') if (out / 'skipped.txt').exists() else ''
    problems = checks.outputs_problems(out, strict=False)
    for case in cases:
        ok, why = judge(case, res, None, None)
        if not ok and case.token in listed:
            ok, why = True, ''
        if ok and problems:
            ok, why = False, problems[0]
        suite.input(tool, case, ok, why)


def clip_inputs(suite, fx: Fixtures) -> None:
    tool = 'od.clip'
    folder = fx.path('inputs', 'clip')
    cases = [c for c in video_cases(folder) if c.path.suffix not in ('.png', '.jpg')]
    (folder / 'notes.txt').write_text('not a video\n')
    out = fx.path('outputs', 'clip')
    res = run(od('od.clip', '--model', str(fx.video_model), '--videos', *[str(c.path) for c in cases],
                 '--duration', '1', '--out', str(out), '--top-k', '10'))
    written = {p.stem: p for p in out.rglob('*.mp4')}
    problems = checks.outputs_problems(out)
    for case in cases:
        mp4 = written.get(case.path.stem)
        problem = next((p for p in problems if mp4 and mp4.name in p), None)
        suite.input(tool, case, *judge(case, res, mp4 is not None, problem))
    missing = fx.path('inputs', 'clip_missing_model.th')
    for name, videos, token in [('videos/not-a-video', [str(folder / 'notes.txt')], 'notes.txt'),
                                ('videos/missing', [str(folder / 'nope_gone.mp4')], 'nope_gone.mp4'),
                                ('videos/empty-folder', [str(fx.path('inputs', 'clip_empty'))], 'clip_empty')]:
        fx.path('inputs', 'clip_empty').mkdir(parents=True, exist_ok=True)
        # Inputs are checked before the model loads: with a missing model the message is about the input.
        res = run(od('od.clip', '--model', str(missing), '--videos', *videos, '--out', str(out)))
        suite.input_result(tool, name, res.rc != 0 and res.message_ok() and res.mentions(token), res.tail())


def generate_inputs(suite, fx: Fixtures) -> None:
    tool = 'od.generate'
    vfolder, afolder = fx.path('inputs', 'generate_video'), fx.path('inputs', 'generate_audio')
    videos = suite.sample([c for c in video_cases(vfolder) if c.bad],
                          ['corrupt-video/mp4', 'truncated-video/webm', 'zero-length-video/mkv', 'corrupt-image/png'])
    audio = suite.sample([c for c in audio_cases(afolder) if c.bad and c.expect == SKIP],
                         ['corrupt/wav', 'nan/wav', 'zero-length/mp3', 'symlink/self-loop'])
    out = fx.path('outputs', 'generate')
    for case in videos:
        flag = '--image' if case.path.suffix in ('.png', '.jpg') else '--video'
        output = out / f'{case.token}.wav'
        res = run(od('od.generate', flag, str(case.path), '--model', str(fx.video_model), '--duration', '1',
                     '--output', str(output), '--top-k', '10'))
        kept = res.rc == 0 and output.exists()
        ok, why = judge(case, res if res.rc == 0 else _as_skip(res), kept, checks.check_file(output) if kept else None)
        suite.input(tool, case, ok, why)
    for case in audio:
        output = out / f'a_{case.token}.wav'
        res = run(od('od.generate', '--audio', str(case.path), '--model', str(fx.audio_model), '--duration', '1',
                     '--output', str(output), '--top-k', '10'))
        suite.input(tool, case, *judge(case, res if res.rc == 0 else _as_skip(res), res.rc == 0 and output.exists()))


def _as_skip(res: checks.Run) -> checks.Run:
    """A single-input command refusing its input with a message is the input handled (skipped)."""
    if res.rc != 0 and res.message_ok():
        return checks.Run(res.args, 0, res.out, res.err, res.wall)
    return res


def export_inputs(suite, fx: Fixtures) -> None:
    import torch
    tool = 'od.export'
    folder = fx.path('inputs', 'export')
    folder.mkdir(parents=True, exist_ok=True)
    good = fx.xp / 'checkpoint.th'
    cases = []

    def add(name, path, expect, token=None):
        cases.append(Case(name, path, expect, token or path.name))
    (folder / 'ck_trunc.th').write_bytes(good.read_bytes()[:len(good.read_bytes()) // 3])
    add('checkpoint/truncated', folder / 'ck_trunc.th', SKIP)
    (folder / 'ck_empty.th').write_bytes(b'')
    add('checkpoint/zero-length', folder / 'ck_empty.th', SKIP)
    add('checkpoint/random-bytes', corrupt(folder / 'ck_garbage.th'), SKIP)
    (folder / 'ck_json.th').write_text('{"best_state": {}}')
    add('checkpoint/json', folder / 'ck_json.th', SKIP)
    (folder / 'ck_dir.th').mkdir(exist_ok=True)
    add('checkpoint/a-folder', folder / 'ck_dir.th', SKIP)
    torch.save({'state': torch.zeros(2)}, folder / 'ck_foreign.th')
    add('checkpoint/foreign-keys', folder / 'ck_foreign.th', SKIP)
    torch.save({'best_state': {'model': {}}, 'xp.cfg': 'not a config'}, folder / 'ck_cfgstr.th')
    add('checkpoint/config-wrong-type', folder / 'ck_cfgstr.th', SKIP)
    add('checkpoint/missing', folder / 'ck_missing.th', SKIP)
    spaced = folder / "ck with 'quote.th"
    shutil.copyfile(good, spaced)
    add('name/space-quote', spaced, KEEP, 'ck with')
    for case in suite.sample(cases, ['checkpoint/truncated', 'checkpoint/json', 'checkpoint/foreign-keys',
                                     'checkpoint/config-wrong-type', 'name/space-quote']):
        out = fx.path('outputs', 'export')
        res = run(od('od.export', '--checkpoint', str(case.path), '--name', case.path.stem.replace(' ', '_'),
                     '--out', str(out), '--overwrite'))
        target = out / case.path.stem.replace(' ', '_')
        kept = res.rc == 0 and target.is_dir()
        problems = checks.outputs_problems(out)
        ok, why = judge(case, res if res.rc == 0 else _as_skip(res), kept, problems[0] if problems else None)
        if ok and not kept and problems:
            ok, why = False, problems[0]
        suite.input(tool, case, ok, why)


def dora_inputs(suite, fx: Fixtures) -> None:
    """`dora run` on manifests that went bad after they were written: lines that are not JSON,
    entries whose file is missing or corrupt or whose sidecar would crash the dataset."""
    import soundfile as sf

    from .media import tone
    tool = 'dora run'
    ex = fx.example / 'egs'
    good = checks.manifest_entries(ex / 'train' / 'data.jsonl')
    folder = fx.path('inputs', 'dora_data')
    folder.mkdir(parents=True, exist_ok=True)
    corrupt(folder / 'dcorrupt.wav')
    sf.write(folder / 'dbadside.wav', tone(5.0), 32000)
    (folder / 'dbadside.json').write_text('[1, 2]')
    sf.write(folder / 'dnan.wav', tone(5.0) * float('nan'), 32000, subtype='FLOAT')
    entry = lambda p: json.dumps({**good[0], 'path': str(p), 'info_path': None})  # noqa: E731
    lines = [json.dumps(e) for e in good]
    cases = [(Case('entry/missing-file', folder / 'dmissing.wav', SKIP, 'dmissing'), entry(folder / 'dmissing.wav')),
             (Case('entry/corrupt', folder / 'dcorrupt.wav', SKIP, 'dcorrupt'), entry(folder / 'dcorrupt.wav')),
             (Case('entry/nan-audio', folder / 'dnan.wav', SKIP, 'dnan'), entry(folder / 'dnan.wav')),
             (Case('entry/array-sidecar', folder / 'dbadside.wav', SKIP, 'dbadside'), entry(folder / 'dbadside.wav'))]
    # A manifest naming a file that is gone, or a sidecar that would crash a batch, is refused at
    # start (a message naming it, exit 1: the manifest is stale, rebuild it); audio that exists but
    # does not decode is skipped while training. So each refused case gets its own manifest, else it
    # would hide the others.
    refused = {'entry/missing-file', 'entry/array-sidecar'}
    groups = [(f"dora_egs_{case.name.split('/')[1]}", [(case, line)], False)
              for case, line in cases if case.name in refused]
    groups.append(('dora_egs_entries', [c for c in cases if c[0].name not in refused], True))
    for name, group, must_train in groups:
        egs = fx.path('inputs', name)
        (egs / 'train').mkdir(parents=True, exist_ok=True)
        (egs / 'train' / 'data.jsonl').write_text(''.join(line + '\n' for line in lines + [e for _, e in group]))
        dora_dir = fx.path('outputs', f'dora_inputs_{name}')
        args = [*DEBUG_FAST, 'optim.updates_per_epoch=6', f'datasource.train={egs}/train',
                f'datasource.valid={ex}/valid', f'datasource.evaluate={ex}/valid', f'datasource.generate={ex}/valid']
        res = run(checks.dora(*args), checks.env(AUDIOCRAFT_DORA_DIR=str(dora_dir)))
        logs = ' '.join(p.read_text(errors='replace') for p in dora_dir.rglob('solver.log.0'))
        res.out += logs
        problems = checks.outputs_problems(dora_dir / 'xps') if res.rc == 0 else []
        for case, _ in group:
            if must_train:
                ok, why = judge(case, res, None, None)
            else:  # refused: a one-paragraph message naming the file, nothing trained
                ok = res.rc != 0 and res.message_ok() and res.mentions(case.token)
                why = '' if ok else f"not refused with a message naming it: {res.tail()}"
            if ok and problems:
                ok, why = False, problems[0]
            suite.input(tool, case, ok, why)
    for name, line in suite.sample(BAD_LINES[:1] + BAD_LINES[3:], QUICK_LINES, key=lambda x: x[0]):
        egs = fx.path('inputs', f'dora_egs_{name.replace("/", "_")}')
        (egs / 'train').mkdir(parents=True, exist_ok=True)
        (egs / 'train' / 'data.jsonl').write_text(''.join(x + '\n' for x in lines + [line]))
        args = [*DEBUG_FAST, f'datasource.train={egs}/train', *datasource(ex)[1:]]
        res = run(checks.dora(*args), checks.env(AUDIOCRAFT_DORA_DIR=str(fx.path('outputs', 'dora_lines'))))
        suite.input_result(tool, name, res.message_ok() and (res.rc == 0 or res.mentions('data.jsonl')), res.tail())


ALL = {'od.manifest': manifest_inputs, 'od.ingest': ingest_inputs, 'od.concepts': concepts_inputs,
       'od.musiccaps': musiccaps_inputs, 'od.prep': prep_inputs, 'od.eval': eval_inputs,
       'od.embeddings': analysis_inputs, 'od.clip': clip_inputs, 'od.generate': generate_inputs,
       'od.export': export_inputs, 'dora run': dora_inputs}
