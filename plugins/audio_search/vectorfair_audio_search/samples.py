"""The sample set: real recordings shipped inside PyPI wheels, found through
package metadata (neither package is imported).

- arcade 3.3.3: Kenney's CC0 game sound effects and two music tracks
  (resources/assets/sounds, resources/assets/music);
- pygame 2.6.1: the example sounds of its examples/data folder;
- pyannote.audio 4.0.7: sample/sample.wav, 30 s of meeting speech;
- opensoundscape 0.13.2: sample_data/birds_10s.wav, a bird-song field recording.
"""

from __future__ import annotations

import importlib.metadata
from collections.abc import Iterator

AUDIO_SUFFIXES = (".wav", ".ogg", ".mp3", ".flac")
SOURCES = {
    "arcade": ("arcade/resources/assets/music/", "arcade/resources/assets/sounds/"),
    # house_lo ships as wav, ogg and mp3 of the same sound: keep the ogg.
    "pygame": ("pygame/examples/data/",),
    "pyannote.audio": ("pyannote/audio/sample/",),
    "opensoundscape": ("opensoundscape/sample_data/",),
}
SKIP = {"house_lo.wav", "house_lo.mp3"}


def sample_files() -> Iterator[tuple[str, bytes]]:
    for distribution, folders in SOURCES.items():
        try:
            dist = importlib.metadata.distribution(distribution)
        except importlib.metadata.PackageNotFoundError:
            continue
        for file in sorted(dist.files or [], key=str):
            path = str(file)
            name = path.rsplit("/", 1)[-1]
            if path.startswith(folders) and path.endswith(AUDIO_SUFFIXES) and name not in SKIP:
                yield f"{distribution.split('.')[0]}/{name}", dist.locate_file(file).read_bytes()
