"""The web demo under load, as a real server in its own process driven by ``gradio_client``:
bounded work per request (size and length limits, a downscaled working copy), temporary
files that do not pile up, ten concurrent uploads, and cleanup on SIGTERM.

Each server gets its own ``TMPDIR`` and ``GRADIO_TEMP_DIR`` in ``tmp_path``, so every file
it leaves behind can be counted.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np
import pytest

from vidrec.data.video_io import open_video_writer

MAX_UPLOAD_MB = 5
RSS_GROWTH_LIMIT_MB = 300
SEQUENTIAL_REQUESTS = 8
CONCURRENT_REQUESTS = 10


def write_clip(path: Path, width: int = 64, height: int = 48, frames: int = 16, fps: float = 8.0, seed: int = 0) -> Path:
    """A real mp4 (the writer's default codec): a coloured square moving over a plain
    background; ``seed`` changes the colours, so files differ byte for byte."""
    rng = np.random.default_rng(seed)
    background, colour = rng.integers(0, 256, 3).tolist(), rng.integers(0, 256, 3).tolist()
    writer, _ = open_video_writer(path, fps, width, height)
    try:
        side = max(4, height // 3)
        for i in range(frames):
            frame = np.empty((height, width, 3), np.uint8)
            frame[:] = background
            x = int((width - side) * i / max(frames - 1, 1))
            frame[height // 3: height // 3 + side, x: x + side] = colour
            writer.write(frame)
    finally:
        writer.release()
    return path


# --------------------------------------------------------------------------------------
# Probing and limits (no server)
# --------------------------------------------------------------------------------------


def test_probe_reads_the_container_and_limits_refuse(tmp_path):
    from vidrec.apps.upload_limits import MAX_PIXELS, check_video, probe_video

    info = probe_video(write_clip(tmp_path / "small.mp4", 64, 48, frames=16, fps=8))
    assert (info.width, info.height, info.frames) == (64, 48, 16)
    assert info.fps == pytest.approx(8.0) and info.duration == pytest.approx(2.0)
    assert check_video(info, "small.mp4") is None
    assert probe_video(tmp_path / "missing.mp4") is None
    assert check_video(None, "x.mp4") is None  # undecodable files are the decoder's to report

    assert check_video(info, "small.mp4", max_pixels=64 * 48 - 1) == (
        "'small.mp4' is 64x48 (0.00307 megapixels), over this demo's limit of 0.00307 megapixels. "
        "Please downscale it and upload it again.")
    assert check_video(info, "small.mp4", max_seconds=1.5) == (
        "'small.mp4' is 0:02 long (2 s), over this demo's limit of 1.5 s (0:02). Please trim it and upload it again.")

    big = probe_video(write_clip(tmp_path / "8k.mp4", 7680, 4320, frames=2))
    assert (big.width, big.height) == (7680, 4320)
    assert MAX_PIXELS == 3840 * 2160
    assert check_video(big, "8k.mp4") == (
        "'8k.mp4' is 7680x4320 (33.2 megapixels), over this demo's limit of 3840x2160 (8.29 megapixels). "
        "Please downscale it and upload it again.")


def test_work_size_caps_pixels_and_short_side():
    from vidrec.apps.upload_limits import _work_size

    assert _work_size(64, 48) == (64, 48)
    assert _work_size(1280, 720) == (1280, 720)
    assert _work_size(3840, 2160) == (1280, 720)
    assert _work_size(1280, 960) == (960, 720)
    assert _work_size(1080, 1920) == (720, 1280)


def test_workspace_keeps_a_session_s_last_request_until_its_next_one_or_the_ttl(tmp_path, monkeypatch):
    from vidrec.apps.demo_files import _Workspace

    gradio_dir = tmp_path / "gradio"
    monkeypatch.setenv("GRADIO_TEMP_DIR", str(gradio_dir))
    ws = _Workspace(ttl=0.5)
    assert ws.root.parent == gradio_dir.resolve() and ws.root.name.startswith("vidrec_demo_")

    def upload(name: str) -> str:  # where Gradio puts an upload: <sha256>/<name>
        path = gradio_dir / f"sha_{name}" / name
        path.parent.mkdir()
        path.write_bytes(b"video")
        return str(path)

    shared = upload("same.mp4")  # two sessions uploaded the same bytes: one path
    a1 = ws.begin("a", shared)
    b1 = ws.begin("b", shared)
    (a1 / "a_annotated.webm").write_bytes(b"result")
    ws.end(a1, shared, keep=set())
    assert Path(shared).is_file()  # b still reads it
    ws.end(b1, shared, keep=set())
    assert not Path(shared).parent.exists()  # the last reader removes it, and Gradio's folder
    assert (a1 / "a_annotated.webm").is_file()  # served to a's page until a's next request

    kept = upload("example.mp4")
    a2 = ws.begin("a", kept)
    ws.end(a2, kept, keep={kept})
    assert not a1.exists() and a2.is_dir() and b1.is_dir() and Path(kept).is_file()

    time.sleep(0.7)
    c1 = ws.begin("c", upload("c.mp4"))  # a and b never came back: past the ttl, their folders go
    assert not a2.exists() and not b1.exists() and c1.is_dir()
    ws.close()
    assert not ws.root.exists()


# --------------------------------------------------------------------------------------
# A real server in a subprocess
# --------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    raise RuntimeError(f"no VmRSS for {pid}")


def _files(folder: Path) -> dict[str, int]:
    """{relative path: size} of every regular file under ``folder``."""
    return {str(p.relative_to(folder)): p.stat().st_size for p in folder.rglob("*") if p.is_file()}


class DemoServer:
    def __init__(self, proc: subprocess.Popen, url: str, tmpdir: Path, gradio_dir: Path, log: Path):
        self.proc, self.url, self.tmpdir, self.gradio_dir, self.log = proc, url, tmpdir, gradio_dir, log

    def client(self):
        from gradio_client import Client

        # download_files=False: results stay on the server, so the client adds nothing to count
        return Client(self.url, download_files=False, verbose=False)

    def rss_mb(self) -> float:
        return _rss_mb(self.proc.pid)

    def demo_files(self) -> dict[str, int]:
        """Every file the server holds except the empty ``tmp*`` stubs gr.File leaves (swept after a minute)."""
        return {k: v for k, v in _files(self.gradio_dir).items() if not (v == 0 and Path(k).name.startswith("tmp"))}


@pytest.fixture(scope="module")
def server(tiny_checkpoint, tmp_path_factory):
    """``launch(..., block=True)`` in a subprocess, as ``infer.py --demo`` runs it."""
    root = tmp_path_factory.mktemp("demo_server")
    tmpdir, gradio_dir = root / "tmp", root / "gradio"
    tmpdir.mkdir()
    gradio_dir.mkdir()
    example = write_clip(root / "example.mp4", seed=99)
    port = _free_port()
    env = {**os.environ, "TMPDIR": str(tmpdir), "GRADIO_TEMP_DIR": str(gradio_dir), "OMP_NUM_THREADS": "1",
           "GRADIO_ANALYTICS_ENABLED": "False", "PYTHONUNBUFFERED": "1"}
    code = ("import sys; from vidrec.apps.web_demo import launch; "
            "launch(sys.argv[1], host='127.0.0.1', port=int(sys.argv[2]), examples=[sys.argv[3]], "
            f"max_upload_mb={MAX_UPLOAD_MB}, device='cpu', block=True)")
    log = root / "server.log"
    with open(log, "wb") as out:
        proc = subprocess.Popen([sys.executable, "-c", code, str(tiny_checkpoint), str(port), str(example)],
                                env=env, stdout=out, stderr=subprocess.STDOUT, cwd=root)
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.monotonic() + 180
        while True:
            if proc.poll() is not None:
                pytest.fail(f"demo server exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
            try:
                with urllib.request.urlopen(url, timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"demo server did not answer in 180 s:\n{log.read_text()[-3000:]}")
            time.sleep(0.5)
        yield DemoServer(proc, url, tmpdir, gradio_dir, log)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(30)


@dataclass
class Answer:
    """The demo's outputs for one upload, by name (their order is the app's)."""

    scores: dict | None
    caption: str
    video: dict | None
    gates: dict | None
    status: str


def _shown(answer: Answer) -> tuple:
    """(scores, caption, annotated video, status): what these tests read of an answer."""
    return answer.scores, answer.caption, answer.video, answer.status


def _predict(client, path: Path) -> Answer:
    from gradio_client import handle_file

    return Answer(*client.predict(handle_file(str(path)), api_name="/predict"))


@pytest.mark.slow
def test_requests_leave_bounded_temp_files_and_big_or_long_videos_are_refused(server, tmp_path):
    client = server.client()
    scores, caption, video, status = _shown(_predict(client, write_clip(tmp_path / "first.mp4", seed=1)))
    assert status.startswith("✓ first.mp4"), status
    assert scores["confidences"] and video["path"]
    after_first = server.demo_files()

    sizes = []
    for i in range(2, SEQUENTIAL_REQUESTS + 1):
        _, _, video, status = _shown(_predict(client, write_clip(tmp_path / f"clip{i}.mp4", seed=i)))
        assert status.startswith(f"✓ clip{i}.mp4"), status
        assert Path(video["path"]).is_file()  # served from the server's folder until the next request
        files = server.demo_files()
        sizes.append((len(files), sum(files.values())))
        # one annotated video (this session's last) and the example: no uploads, nothing older
        assert len(files) == len(after_first), files
        assert not [k for k in files if k.endswith(f"clip{i}.mp4")], files  # the upload is gone
    print(f"\ntemp folder after request 1: {len(after_first)} files, {sum(after_first.values())} bytes; "
          f"after requests 2..{SEQUENTIAL_REQUESTS}: {sizes}")
    assert max(b for _, b in sizes) < 2 * 1024 * 1024

    # Over 4K: refused from the container's fields, before any decoding; the upload is removed too.
    _, caption, video, status = _shown(_predict(client, write_clip(tmp_path / "eight_k.mp4", 7680, 4320, frames=2)))
    assert status == ("✗ 'eight_k.mp4' is 7680x4320 (33.2 megapixels), over this demo's limit of "
                      "3840x2160 (8.29 megapixels). Please downscale it and upload it again.")
    assert caption == "" and video is None
    # Over 600 s (601 frames at 1 fps).
    status = _predict(client, write_clip(tmp_path / "long.mp4", frames=601, fps=1.0)).status
    assert status == ("✗ 'long.mp4' is 10:01 long (601 s), over this demo's limit of 600 s (10:00). "
                      "Please trim it and upload it again.")
    assert not [k for k in server.demo_files() if k.endswith(("eight_k.mp4", "long.mp4"))]

    # Taller than 720: the model and the annotation read a 960x720 working copy.
    _, caption, video, status = _shown(_predict(client, write_clip(tmp_path / "tall.mp4", 1280, 960, frames=8)))
    assert status.startswith("✓ tall.mp4"), status
    cap = cv2.VideoCapture(video["path"])
    assert (cap.get(cv2.CAP_PROP_FRAME_WIDTH), cap.get(cv2.CAP_PROP_FRAME_HEIGHT)) == (960, 720)
    cap.release()
    assert not [k for k in server.demo_files() if k.endswith("work.mp4")]


@pytest.mark.slow
def test_ten_concurrent_uploads_are_all_answered_with_flat_memory(server, tmp_path):
    clips = [write_clip(tmp_path / f"burst{i}.mp4", seed=100 + i) for i in range(CONCURRENT_REQUESTS)]
    clients = [server.client() for _ in clips]  # one session each, as ten browser tabs
    status = _predict(clients[0], write_clip(tmp_path / "warmup.mp4", seed=42)).status
    assert status.startswith("✓"), status
    warm = server.rss_mb()

    results: dict[int, object] = {}
    peak = [warm]
    done = threading.Event()

    def watch():
        while not done.wait(0.2):
            try:
                peak[0] = max(peak[0], server.rss_mb())
            except (OSError, RuntimeError):
                return

    def run(i):
        try:
            results[i] = _predict(clients[i], clips[i])
        except Exception as e:  # recorded: every request must be answered
            results[i] = e

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    threads = [threading.Thread(target=run, args=(i,)) for i in range(CONCURRENT_REQUESTS)]
    t0 = time.perf_counter()
    for t in threads:
        t.start()
    for t in threads:
        t.join(300)
    seconds = time.perf_counter() - t0
    done.set()
    watcher.join()
    after = server.rss_mb()
    files = server.demo_files()
    print(f"\n{CONCURRENT_REQUESTS} concurrent requests in {seconds:.1f} s; server RSS warm {warm:.0f} MB, "
          f"peak {peak[0]:.0f} MB, after {after:.0f} MB; temp folder {len(files)} files, {sum(files.values())} bytes")

    assert sorted(results) == list(range(CONCURRENT_REQUESTS))
    for i, r in results.items():
        assert not isinstance(r, Exception), f"request {i} failed: {r!r}"
        scores, caption, video, status = _shown(r)
        assert status.startswith(f"✓ burst{i}.mp4"), status
        assert scores["confidences"] and video["path"]
    assert after - warm < RSS_GROWTH_LIMIT_MB and peak[0] - warm < RSS_GROWTH_LIMIT_MB
    # ten sessions, each keeping its last annotated video, plus the first session's and the example
    assert len(files) <= CONCURRENT_REQUESTS + 3, files
    assert not [k for k in files if "burst" in k and not k.endswith("_annotated_web.webm")
                and not k.endswith("_annotated.mp4")], files


@pytest.mark.slow
def test_sigterm_removes_the_demo_folders(server, tmp_path):
    status = _predict(server.client(), write_clip(tmp_path / "last.mp4", seed=7)).status
    assert status.startswith("✓"), status
    assert list(server.gradio_dir.glob("vidrec_demo_*"))
    time.sleep(1.2)  # the empty tmp* stubs gr.File leaves are removed at shutdown once a second old
    server.proc.send_signal(signal.SIGTERM)
    assert server.proc.wait(60) == 128 + signal.SIGTERM
    left = [p for folder in (server.tmpdir, server.gradio_dir) for p in folder.rglob("vidrec_demo_*")]
    assert not left, left
    assert _files(server.gradio_dir) == {}, _files(server.gradio_dir)
