"""Does any simple time-asymmetric statistic tell a real clip from its reverse, on every source?

    python -m benchmarks.real_footage --out data/real_footage      # if not built yet
    python -m benchmarks.arrow_of_time_cues --data data/real_footage

In the real-footage benchmark ``backward_k`` is ``forward_k`` played backwards, so a statistic
can only help if it is odd under time reversal, and it transfers to footage never seen in
training only if its sign is the same on every source. For each source and statistic this
prints the fraction of the 8 pairs in which the forward clip has the larger value: 1.0 (or
0.0) on every source would be a cue; 0.5 is none. The statistics are the textbook arrows of
time that need no learning (each on every frame of the 16-frame clip, DIS flow at 112 px):

* speed trend: slope of the mean flow magnitude (dissipation: things slow down by themselves);
* speed-change skew: skewness of its frame-to-frame change (abrupt starts, gradual stops),
  and the same per pixel;
* expansion: mean divergence of the flow (approaching camera or objects);
* sharpness trend and sharpness-change skew: Laplacian variance per frame (a lossy codec's
  quality drift between keyframes).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

from benchmarks.real_footage import SOURCES
from vidrec.data.decode import open_video
from vidrec.data.motion import camera_motion, optical_flow

PAIRS_PER_SOURCE = 8


def _skew(x: np.ndarray) -> float:
    x = x - x.mean()
    return float((x**3).mean() / (x.std() ** 3 + 1e-9))


def _slope(y: np.ndarray) -> float:
    return float(np.polyfit(np.arange(len(y)), y / (np.abs(y).mean() + 1e-9), 1)[0])


def statistics(frames: np.ndarray) -> dict[str, float]:
    """uint8 RGB (T, H, W, 3) -> the statistics in the module docstring."""
    import cv2

    flow = optical_flow(frames)  # (T-1, H, W, 2) px
    magnitude = np.linalg.norm(flow, axis=-1)  # (T-1, H, W)
    speed = magnitude.mean(axis=(1, 2))  # (T-1,)
    grey = [cv2.cvtColor(f, cv2.COLOR_RGB2GRAY) for f in frames]
    sharpness = np.array([cv2.Laplacian(g, cv2.CV_32F).var() for g in grey])  # (T,)
    return {
        "speed trend": _slope(speed),
        "speed-change skew": _skew(np.diff(speed)),
        "per-pixel speed-change skew": _skew(np.diff(magnitude, axis=0).ravel()),
        "expansion (mean divergence)": float(camera_motion(frames)[:, 2].mean()),
        "sharpness trend": _slope(sharpness),
        "sharpness-change skew": _skew(np.diff(sharpness)),
    }


def _read(path: Path) -> np.ndarray:
    with open_video(path) as reader:
        return reader.get_frames(list(range(reader.num_frames)))  # (T, H, W, 3)


def table(data: Path) -> str:
    names = [s.name for s in SOURCES if (data / "clips" / s.name).is_dir()]
    larger: dict[str, list[float]] = {}
    for name in names:
        wins: dict[str, int] = {}
        for k in range(PAIRS_PER_SOURCE):
            fwd = statistics(_read(data / "clips" / name / f"forward_{k}.mp4"))
            bwd = statistics(_read(data / "clips" / name / f"backward_{k}.mp4"))
            for stat in fwd:
                wins[stat] = wins.get(stat, 0) + (fwd[stat] > bwd[stat])
        for stat, w in wins.items():
            larger.setdefault(stat, []).append(w / PAIRS_PER_SOURCE)
    lines = ["| statistic | " + " | ".join(names) + " |", "|---" * (len(names) + 1) + "|"]
    lines += [f"| {stat} | " + " | ".join(f"{v:.2f}" for v in values) + " |" for stat, values in larger.items()]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", type=Path, default=Path("data/real_footage"))
    args = ap.parse_args(argv)
    print("Fraction of forward/backward pairs in which the forward clip has the larger value:\n")
    print(table(args.data))


if __name__ == "__main__":
    main()
