"""The web demo's temporary files: one ``vidrec_demo_*`` folder per app inside Gradio's upload
folder (staged examples, one folder per request), and the removal of what Gradio itself leaves
behind (uploads, empty ``tmp*`` files) when the app closes or is signalled.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

log = logging.getLogger(__name__)

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


def _delete_gradio_files(app: Any) -> None:  # a gr.Blocks
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
