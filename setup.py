"""od: new conditioning signals for MusicGen (AudioCraft 1.3), trained with Dora/Hydra.

Install with ./install.sh (it pins the stack and installs audiocraft without its stale pins);
`pip install -e . --no-deps` is what that script runs for this package itself.
"""
import re
from pathlib import Path

from setuptools import find_packages, setup

# Read the version without importing od (its __init__ sets up the runtime environment).
version = {'__version__': re.search(r"^__version__ = '([^']+)'", (Path(__file__).parent / 'od' / '__init__.py').read_text(), re.M).group(1)}

setup(
    name='od',
    version=version['__version__'],
    description='Video, image, reference-audio and concept conditioning for MusicGen',
    python_requires='>=3.10',
    packages=find_packages(include=['od', 'od.*']),
    # Runtime deps are pinned in requirements.txt and installed by install.sh; audiocraft must
    # be installed with --no-deps, which install_requires cannot express.
    install_requires=[],
)
