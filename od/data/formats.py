"""Which file extensions od reads as what: one list per kind, used by every walker and reader."""

AUDIO_EXTS = ('.wav', '.mp3', '.flac', '.ogg', '.opus', '.m4a')   # AudioCraft's readers decode these
VIDEO_EXTS = ('.mp4', '.mov', '.mkv', '.webm', '.avi', '.m4v')    # PyAV reads their frames (od.data.media)
IMAGE_EXTS = ('.png', '.jpg', '.jpeg', '.webp', '.bmp')
VISUAL_EXTS = VIDEO_EXTS + IMAGE_EXTS
MIDI_EXTS = ('.mid', '.midi')                                     # od.analysis.midi's symbolic encoder
