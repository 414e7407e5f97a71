"""Decoding, checking and framing of audio, shared by ingest and queries.

Everything is checked from the bytes: the container by its magic number, the
duration from the header before any sample is decoded, silence and truncation
after decoding.
"""

from __future__ import annotations

import dataclasses
import io

import numpy as np

# The aiSFX model was trained on 44.1 kHz log-mel spectrograms of 96 bands
# with a 2048-sample window and a 1024-sample hop; these are not options.
SAMPLE_RATE = 44100
FFT_WINDOW = 2048
FFT_HOP = 1024
MEL_BANDS = 96
# aiSFX's "original" normalisation range of its log-mel values.
SPEC_MAX = 9.457798957824707

CONTENT_TYPES = {
    "wav": "audio/wav",
    "flac": "audio/flac",
    "ogg": "audio/ogg",
    "mp3": "audio/mpeg",
    "aiff": "audio/aiff",
}


class AudioRejected(ValueError):
    """The bytes are not usable audio; the message says why and what to do."""


@dataclasses.dataclass
class Clip:
    samples: np.ndarray  # mono float32 at SAMPLE_RATE, peak-normalised
    duration: float
    kind: str
    source_rate: int
    channels: int


def sniff(data: bytes) -> str | None:
    """The container, by magic number (names and declared types are not trusted)."""
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        return "wav"
    if data[:4] == b"fLaC":
        return "flac"
    if data[:4] == b"OggS":
        return "ogg"
    if data[:4] == b"FORM" and data[8:12] in (b"AIFF", b"AIFC"):
        return "aiff"
    if data[:3] == b"ID3" or (len(data) > 1 and data[0] == 0xFF and data[1] & 0xE0 == 0xE0):
        return "mp3"
    return None


def decode(data: bytes, max_seconds: float, min_seconds: float = 0.1, silence_db: float = -60.0) -> Clip:
    import soundfile

    kind = sniff(data)
    if kind is None:
        raise AudioRejected("not an audio file this demo can read; send WAV, FLAC, Ogg Vorbis/Opus, MP3 or AIFF")
    _check_container_size(data, kind)
    try:
        info = soundfile.info(io.BytesIO(data))
    except Exception:
        raise AudioRejected(
            f"the {kind.upper()} header cannot be read; the file is damaged or not really {kind}"
        ) from None
    declared = info.frames / info.samplerate if info.samplerate and info.frames > 0 else 0.0
    if declared > max_seconds:
        raise AudioRejected(f"the recording lasts {declared:.0f} s, over the limit of {max_seconds:.0f} s; cut it")
    try:
        samples, rate = soundfile.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except Exception as exc:
        raise AudioRejected(f"the audio cannot be decoded ({exc}); the file is truncated or damaged") from None
    if samples.shape[0] == 0:
        raise AudioRejected("the file holds no audio samples")
    # libsndfile reads what is there when a file was cut short; a large
    # shortfall against the header means a truncated upload.
    if kind in ("wav", "flac", "aiff") and info.frames > 0 and samples.shape[0] < 0.98 * info.frames:
        raise AudioRejected(
            f"the file is truncated: the header announces {declared:.1f} s, only {samples.shape[0] / rate:.1f} s are there"
        )
    channels = samples.shape[1]
    mono = samples.mean(axis=1)
    duration = mono.shape[0] / rate
    if duration > max_seconds:
        raise AudioRejected(f"the recording lasts {duration:.0f} s, over the limit of {max_seconds:.0f} s; cut it")
    if duration < min_seconds:
        raise AudioRejected(f"the recording lasts {duration:.2f} s; send at least {min_seconds:g} s")
    if not np.isfinite(mono).all():
        raise AudioRejected("the audio holds invalid (NaN or infinite) samples")
    peak = float(np.abs(mono).max())
    if peak <= 10 ** (silence_db / 20):
        raise AudioRejected(f"the recording is silent (peak below {silence_db:g} dBFS)")
    if rate != SAMPLE_RATE:
        import librosa

        mono = librosa.resample(mono, orig_sr=rate, target_sr=SAMPLE_RATE, res_type="soxr_hq")
    # Peak normalisation, as aiSFX does, makes the vectors blind to gain.
    mono = (mono / max(float(np.abs(mono).max()), 1e-9)).astype(np.float32)
    return Clip(mono, duration, kind, int(rate), channels)


def _check_container_size(data: bytes, kind: str) -> None:
    """WAV and AIFF state their own length; libsndfile quietly reads what is
    left of a file cut short, so compare."""
    if kind == "wav" and len(data) >= 12:
        declared = int.from_bytes(data[4:8], "little")
    elif kind == "aiff" and len(data) >= 12:
        declared = int.from_bytes(data[4:8], "big")
    else:
        return
    # 0 and 0xFFFFFFFF mark a stream written without knowing its length.
    if declared not in (0, 0xFFFFFFFF) and len(data) - 8 < declared:
        raise AudioRejected(
            f"the file is truncated: its header announces {declared + 8} bytes, {len(data)} arrived; upload it again"
        )


def log_mel(samples: np.ndarray) -> np.ndarray:
    """(frames, MEL_BANDS) log-mel spectrogram scaled as aiSFX was trained."""
    import librosa

    spec = librosa.feature.melspectrogram(
        y=samples,
        sr=SAMPLE_RATE,
        n_mels=MEL_BANDS,
        norm=1.0,
        fmin=0.0,
        fmax=SAMPLE_RATE / 2,
        htk=True,
        power=2.0,
        hop_length=FFT_HOP,
        win_length=FFT_WINDOW,
        n_fft=FFT_WINDOW,
    )
    return (np.log10(spec * 10000.0 + 1) / SPEC_MAX).T.astype(np.float32)


ENVELOPE_BANDS = 4


def envelope(spec: np.ndarray) -> np.ndarray:
    """(frames, ENVELOPE_BANDS): loudness over time in a few frequency bands.
    The embedding says what a window sounds like but not when inside it
    things happen; this coarse time line lets a search place a clip to one
    spectrogram frame (23 ms) and tell apart repeats that sound alike."""
    return np.stack([band.mean(axis=1) for band in np.array_split(spec, ENVELOPE_BANDS, axis=1)], axis=1)


def alignment_match(query: np.ndarray, timeline: dict[int, np.ndarray], start: int, min_cover: float = 0.5) -> float:
    """Pearson correlation, per band then averaged, between the query's
    envelope and a stored time line placed at frame `start`; 0 when too little
    of the stored time line is known there."""
    pairs = [(query[i], timeline[start + i]) for i in range(len(query)) if start + i in timeline]
    if len(pairs) < max(8, min_cover * len(query)):
        return 0.0
    q = np.array([a for a, _ in pairs])
    t = np.array([b for _, b in pairs])
    q = q - q.mean(axis=0)
    t = t - t.mean(axis=0)
    denominator = np.sqrt((q**2).sum(axis=0) * (t**2).sum(axis=0))
    valid = denominator > 1e-9
    return float(((q * t).sum(axis=0)[valid] / denominator[valid]).mean()) if valid.any() else 0.0


def seconds_to_frames(seconds: float) -> int:
    return max(1, int(round(seconds * SAMPLE_RATE / FFT_HOP)))


def frames_to_seconds(frames: int) -> float:
    return frames * FFT_HOP / SAMPLE_RATE


def windows(spec: np.ndarray, window: int, hop: int) -> tuple[np.ndarray, list[int]]:
    """Overlapping blocks of `window` frames every `hop` frames, and their start
    frames. A clip shorter than one window becomes one block padded with
    silence; a tail shorter than a window is covered by a last block aligned
    to the end, so every moment of the file is in some block."""
    if spec.shape[0] <= window:
        padded = np.zeros((window, spec.shape[1]), dtype=np.float32)
        padded[: spec.shape[0]] = spec
        return padded[None], [0]
    starts = list(range(0, spec.shape[0] - window + 1, hop))
    if starts[-1] + window < spec.shape[0] and spec.shape[0] - (starts[-1] + window) > hop // 2:
        starts.append(starts[-1] + hop)
        spec = np.vstack([spec, np.zeros((starts[-1] + window - spec.shape[0], spec.shape[1]), np.float32)])
    return np.stack([spec[s : s + window] for s in starts]), starts


def waveform_png(samples: np.ndarray, width: int = 320, height: int = 72) -> bytes:
    """A small min/max envelope picture of the clip, as its thumbnail."""
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (width, height), (244, 246, 250))
    draw = ImageDraw.Draw(image)
    columns = np.array_split(samples, width) if samples.size >= width else [samples] * width
    middle = height / 2
    for x, column in enumerate(columns):
        if column.size == 0:
            continue
        low, high = float(column.min()), float(column.max())
        draw.line([(x, middle - high * (middle - 2)), (x, middle - low * (middle - 2))], fill=(37, 99, 235))
    buffer = io.BytesIO()
    image.save(buffer, "PNG", optimize=True)
    return buffer.getvalue()
