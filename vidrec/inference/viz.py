"""Pictures of predictions: the probability timeline (optionally with the temporal model's gates), annotated video frames."""

from __future__ import annotations

import matplotlib

matplotlib.use("Agg")  # no display on servers; figures are saved or logged
import matplotlib.pyplot as plt  # noqa: E402
import bisect  # noqa: E402
import math  # noqa: E402

import cv2  # noqa: E402
import numpy as np  # noqa: E402

from vidrec.data.video_io import open_video_writer  # noqa: E402

__all__ = ["annotate_video", "plot_timeline", "timeline_figure", "plot_gates", "gates_figure"]


# --------------------------------------------------------------------------------------
# Predictions: annotated video, probability timeline
# --------------------------------------------------------------------------------------

def _window_at(timeline, centres: list[float], t: float):
    """The window covering time ``t`` whose centre is nearest (nearest centre if none covers it)."""
    k = bisect.bisect_left(centres, t)
    candidates = [timeline[i] for i in (k - 1, k) if 0 <= i < len(timeline)]
    covering = [w for w in candidates if w.start <= t < w.end] or candidates
    return min(covering, key=lambda w: abs(w.centre - t))


def _wrap(text: str, font, scale: float, thickness: int, max_width: int, max_lines: int) -> list[str]:
    """Greedy word wrap to ``max_width`` pixels; the last line gets an ellipsis if cut."""
    def width(s: str) -> int:
        return cv2.getTextSize(s, font, scale, thickness)[0][0]

    lines: list[str] = []
    words = text.split()
    line = ""
    for i, word in enumerate(words):
        candidate = f"{line} {word}".strip()
        if width(candidate) <= max_width or not line:
            line = candidate
            continue
        lines.append(line)
        line = word
        if len(lines) == max_lines:
            line = ""
            last = lines[-1]
            while last and width(last + "...") > max_width:
                last = last[:-1]
            lines[-1] = last.rstrip() + "..."
            break
    if line:
        lines.append(line)
    return lines[:max_lines]


def _draw_text_band(frame: np.ndarray, lines: list[tuple[str, tuple[int, int, int], float]], scale: float, thickness: int) -> None:
    """Draw ``lines`` (text, BGR colour, relative size) on a dark translucent band at the bottom, in place."""
    if not lines:
        return
    font = cv2.FONT_HERSHEY_SIMPLEX
    h = frame.shape[0]
    metrics = []
    for text, colour, rel in lines:
        (_, text_h), baseline = cv2.getTextSize("Ag", font, scale * rel, thickness)
        metrics.append((text_h, int(round((text_h + baseline) * 1.3))))
    pad = max(int(round(metrics[0][0] * 0.5)), 3)
    band_h = min(sum(m[1] for m in metrics) + pad, h)
    top = h - band_h
    region = frame[top:, :]
    # 65% black under the text: legible on bright frames while the picture still shows through
    region[:] = (region.astype(np.float32) * 0.35).astype(np.uint8)
    y = top + pad
    for (text, colour, rel), (text_h, line_h) in zip(lines, metrics):
        y_base = y + text_h
        # A drop shadow keeps letters readable where the band is still light. (Not a thicker
        # black stroke: Hershey glyph advances grow with thickness, so it would drift right.)
        off = max(1, thickness)
        cv2.putText(frame, text, (pad + off, y_base + off), font, scale * rel, (0, 0, 0), thickness, cv2.LINE_AA)
        cv2.putText(frame, text, (pad, y_base), font, scale * rel, colour, thickness, cv2.LINE_AA)
        y += line_h


def annotate_video(src, dst, prediction, fps: float | None = None, min_height: int = 360):
    """Write ``dst`` (mp4): ``src`` with the top action, its probability and the caption on every frame.

    With a timeline, each frame shows the window covering its time (nearest window centre).
    Videos shorter than ``min_height`` pixels are upscaled (integer factor, nearest
    neighbour) so the text is legible; the frame count is unchanged. ``fps`` defaults to the
    source's. Returns ``dst``.
    """
    cap = cv2.VideoCapture(str(src))
    if not cap.isOpened():
        raise RuntimeError(f"{src}: cannot open video for annotation")
    src_fps = float(cap.get(cv2.CAP_PROP_FPS) or 0.0) or 25.0
    fps = float(fps or src_fps)
    timeline = list(prediction.timeline or [])
    centres = [w.centre for w in timeline]
    font = cv2.FONT_HERSHEY_SIMPLEX
    writer = None
    cache: dict[int, list] = {}  # id(window or prediction) -> rendered text lines
    try:
        index = 0
        while True:
            ok, frame = cap.read()
            if not ok or frame is None:
                break
            if writer is None:
                h0, w0 = frame.shape[:2]
                factor = max(1, int(math.ceil(min_height / h0))) if h0 < min_height else 1
                out_w, out_h = w0 * factor, h0 * factor
                out_w += out_w % 2  # H.264/MPEG-4 want even sizes
                out_h += out_h % 2
                writer, _ = open_video_writer(dst, fps, out_w, out_h)
                scale = out_h / 560.0  # ~0.65 at 360 px, ~1.3 at 720 px
                thickness = max(1, int(round(scale * 1.6)))
            if frame.shape[1] != out_w or frame.shape[0] != out_h:
                frame = cv2.resize(frame, (out_w, out_h), interpolation=cv2.INTER_NEAREST)
            source = _window_at(timeline, centres, index / src_fps) if timeline else prediction
            key = id(source)
            if key not in cache:
                lines: list[tuple[str, tuple[int, int, int], float]] = []
                if source.actions:
                    top = source.actions[0]
                    lines.append((f"{top.label}  {top.prob * 100:.0f}%", (80, 230, 255), 1.0))  # amber (BGR)
                if source.caption:
                    margin = 2 * max(3, int(round(scale * 12)))
                    for text in _wrap(source.caption, font, scale * 0.85, thickness, out_w - margin, 2):
                        lines.append((text, (255, 255, 255), 0.85))
                cache[key] = lines
            _draw_text_band(frame, cache[key], scale, thickness)
            writer.write(frame)
            index += 1
    finally:
        cap.release()
        if writer is not None:
            writer.release()
    if writer is None:
        raise RuntimeError(f"{src}: no frame could be read")
    return dst


def _timeline_series(prediction):
    """Window centres (M,) and {class: probabilities (M,)} (NaN where a class is unknown)."""
    timeline = prediction.timeline or []
    centres = np.array([w.centre for w in timeline], dtype=float)
    classes = getattr(prediction, "classes", None)
    if classes and all(getattr(w, "probs", None) is not None for w in timeline):
        probs = np.stack([np.asarray(w.probs, dtype=float) for w in timeline])  # (M, C)
        return centres, {c: probs[:, i] for i, c in enumerate(classes)}
    # Read back from JSON: only each window's top-k is known.
    series: dict[str, np.ndarray] = {}
    for m, w in enumerate(timeline):
        for a in w.actions:
            series.setdefault(a.label, np.full(len(timeline), np.nan))[m] = a.prob
    return centres, series


def _draw_gates(ax, activity) -> list:
    """Gate means (left axis, 0..1) and state norms (right axis) over time on ``ax``; returns every axis drawn on."""
    marker = "o" if len(activity.times) <= 40 else None
    cmap = plt.get_cmap("Dark2")
    for k, (name, y) in enumerate(activity.gates.items()):
        ax.plot(activity.times, y, label=name.replace("_", " "), color=cmap(k % 8), linewidth=1.8, marker=marker, markersize=3)
    if activity.committed is not None:
        ax.plot(activity.times, activity.committed, color="crimson", linewidth=2.6, marker=marker, markersize=4,
                label=f"p({activity.label}) had the clip ended here")
    ax.set_ylim(0, 1.02)
    ax.set_ylabel("gate (mean over units)")
    ax.grid(True, alpha=0.3)
    # Norms are unbounded: their own axis, so they do not flatten the gates' 0..1 range.
    norm_ax = ax.twinx()
    for name, y in activity.norms.items():
        norm_ax.plot(activity.times, y, label=name.replace("_", " "), color="black", linestyle="--", linewidth=1.5)
    norm_ax.set_ylim(0, max(1e-6, max((float(np.max(y)) for y in activity.norms.values()), default=1.0)) * 1.1)
    norm_ax.set_ylabel("state norm")
    handles = [h for a in (ax, norm_ax) for h in a.get_legend_handles_labels()[0]]
    ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(1.08, 1.0), fontsize=9, frameon=False)
    return [ax, norm_ax]


def timeline_figure(prediction, top: int = 5, gates=None):
    """The timeline picture as a matplotlib ``Figure`` (the caller closes it): the ``top``
    classes' probabilities at window centres, and with ``gates`` (a
    ``vidrec.inference.gate_activity.GateActivity``) a second panel under it, on the same time
    axis, with the temporal model's per-frame gate means and state norm."""
    from pathlib import Path

    if not prediction.timeline:
        raise ValueError(f"{prediction.video}: no timeline to plot (predict with a window)")
    centres, series = _timeline_series(prediction)
    ranked = sorted(series, key=lambda c: -np.nanmax(series[c]))[:top]
    if gates is None:
        fig, ax = plt.subplots(figsize=(10, 4.2))
    else:
        fig, (ax, gate_ax) = plt.subplots(2, 1, figsize=(10, 6.8), sharex=True, gridspec_kw={"height_ratios": [3, 2]})
    cmap = plt.get_cmap("tab10")
    for k, label in enumerate(ranked):
        y = series[label]
        marker = "o" if len(centres) <= 40 else None
        ax.plot(centres, y, label=f"{label} (max {np.nanmax(y):.2f})", color=cmap(k % 10), linewidth=2,
                marker=marker, markersize=4)
    end = max(w.end for w in prediction.timeline)
    ax.set_xlim(0, max(end, 1e-6))
    ax.set_ylim(0, 1.02)
    ax.set_ylabel("probability")
    ax.set_title(Path(str(prediction.video)).name)
    ax.grid(True, alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=9, frameon=False)
    if gates is None:
        ax.set_xlabel("time (s) — window centres")
    else:
        _draw_gates(gate_ax, gates)
        gate_ax.set_xlabel("time (s) — window centres (top), whole-video sampled frames (bottom)")
    fig.tight_layout()
    return fig


def plot_timeline(prediction, path, top: int = 5, gates=None):
    """Line plot of the ``top`` classes' probabilities over the video (at window centres).

    Classes are ranked by their highest probability in any window. Needs a prediction made
    with windows. With ``gates`` (a ``GateActivity``, from ``gate_activity(predictor, video)``;
    None for a model without gates), a panel underneath shows the LSTM's input, forget and
    output gates and cell-state norm per sampled frame (GRU: update and reset gates, hidden
    norm). Saves a PNG at ``path`` and returns ``path``.
    """
    return _save(timeline_figure(prediction, top, gates), path)


def _save(fig, path):
    """Write ``fig`` as a PNG at ``path`` (folders made), close it, return ``path``."""
    from pathlib import Path

    try:
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(path, dpi=120)
    finally:
        plt.close(fig)
    return path


def gates_figure(activity, title: str | None = None, highlight: tuple[float, float] | None = None):
    """A ``GateActivity`` on its own as a ``Figure`` (the caller closes it); ``highlight`` shades
    the time range ``(start, end)`` seconds, e.g. where the clip's decisive event is."""
    fig, ax = plt.subplots(figsize=(9, 3.6))
    if highlight is not None:
        ax.axvspan(*highlight, color="gold", alpha=0.25, linewidth=0)
    _draw_gates(ax, activity)
    ax.set_xlim(float(np.min(activity.times)), float(np.max(activity.times)) + 1e-6)
    ax.set_xlabel("time (s) — sampled frames")
    if title:
        ax.set_title(title)
    fig.tight_layout()
    return fig


def plot_gates(activity, path, title: str | None = None, highlight: tuple[float, float] | None = None):
    """Save ``gates_figure(activity, title, highlight)`` as a PNG at ``path``; returns ``path``."""
    return _save(gates_figure(activity, title, highlight), path)
