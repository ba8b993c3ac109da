"""Feature store at Kinetics-400 scale: LitData chunks streamed vs the per-file cache held in RAM.

Synthetic Kinetics-400: 240,000 clips' features, random float16 (T=8, D=1280; EfficientNet-Lite0
at 8 frames), written with the store's own writer (``ShardWriter`` + ``merge_parts``, the format
``FeatureStore`` writes; no CNN runs). Every case runs in a fresh process, so one case's memory
cannot show up in another's peak: it reads one training epoch through the code training uses
(``open_store`` -> ``FeatureStream`` -> DataLoader + ``collate_clips``, shuffled, batch 32) with 0
and 2 DataLoader workers, and as 2 DDP processes (gloo) each reading its half. Beside it, today's
cache (one ``.pt`` per clip, ``torch.load`` of every file into a ``FeatureDataset`` first) at sizes
this machine holds, and the store at the same sizes, to show how each grows with the clips.

    python -m benchmarks.feature_store_scale                 # the full 240k (about 5-10 minutes)
    python -m benchmarks.feature_store_scale --clips 20000   # a quick run
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

TITLE = "Feature store: Kinetics-400 scale (240k clips) streamed from LitData chunks vs the per-file cache"
CLIPS, T, D, BATCH, CLASSES = 240_000, 8, 1280, 32, 400
FILE_SIZES = (2_000, 8_000, 32_000)  # per-file cache sizes this machine holds comfortably
ROOT = Path(__file__).resolve().parent.parent
STORE, FILES = "store (LitData chunks)", "per-file cache (a .pt per clip, all in RAM)"
WHAT = (
    f"{CLIPS:,} clips of random float16 ({T}, {D}) features (~{CLIPS * T * D * 2 / 2**30:.1f} GiB) written to a store under "
    "/tmp by the store's writer; each reading case in a fresh process: one shuffled training epoch, batch "
    f"{BATCH}, through `FeatureStream` and `collate_clips`. *peak RSS*: the kernel's high-water mark (VmHWM) of the reading process (a DDP rank) "
    "and of its largest DataLoader worker; RSS counts shared pages (torch's libraries, a forked worker's pages of its "
    "parent) once per process, so *rank PSS* adds up the proportional set size of the process and its workers, "
    "sampled every 0.1 s: the memory the rank really takes. First batch: from opening the store (for the files, "
    "from the first `torch.load`) to the first batch in hand; the clip records (what the manifest gives) are built "
    "before. The store is read just after it was written, so mostly from the page cache: the reading rates are "
    "the CPU cost, not a cold disk's."
)


def describe() -> str:
    return WHAT


# --------------------------------------------------------------------------------------
# the cases, each run in its own process (python -m benchmarks.feature_store_scale --case ...)
# --------------------------------------------------------------------------------------


def _records(n: int) -> list:
    from vidrec.data.manifest import ClipRecord

    # Kinetics has labels and no captions; the videos are not opened when features are read.
    return [ClipRecord(video=f"/data/kinetics400/train/{i:06d}.mp4", label=f"class{i % CLASSES:03d}") for i in range(n)]


def _descendants(pid: int) -> list[int]:
    """The processes ``pid`` started (DataLoader workers), and theirs."""
    out = []
    try:
        for tid in os.listdir(f"/proc/{pid}/task"):
            with open(f"/proc/{pid}/task/{tid}/children") as f:
                out += [int(c) for c in f.read().split()]
    except OSError:  # it has just exited
        return []
    return out + [d for c in out for d in _descendants(c)]


class _TreeMemory:
    """Peak PSS of this process plus its descendants, sampled every 0.1 s: a rank's own memory.

    RSS counts pages shared with other processes (torch's libraries, and a forked worker's pages
    of its parent) once per process; PSS splits each shared page between its sharers, so the
    sum over a rank's processes is what the rank really adds.
    """

    def __init__(self):
        import threading

        self.peak = 0.0
        self.worker_peak = 0.0  # largest VmHWM among the descendants (DataLoader workers)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    def _sample(self) -> None:
        while not self._stop.wait(0.1):
            total = 0
            for pid in _descendants(os.getpid()):
                hwm = _hwm_mib(pid)
                if hwm == hwm:
                    self.worker_peak = max(self.worker_peak, hwm)
            for pid in [os.getpid(), *_descendants(os.getpid())]:
                try:
                    with open(f"/proc/{pid}/smaps_rollup") as f:
                        total += next(int(line.split()[1]) for line in f if line.startswith("Pss:"))
                except (OSError, StopIteration):
                    pass
            self.peak = max(self.peak, total / 1024)

    def __enter__(self) -> "_TreeMemory":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join()


def _hwm_mib(pid: int | str = "self") -> float:
    """Peak RSS of a process's own memory (VmHWM, MiB), or nan when it is gone."""
    try:
        with open(f"/proc/{pid}/status") as f:
            return next(int(line.split()[1]) for line in f if line.startswith("VmHWM:")) / 1024
    except (OSError, StopIteration):
        return float("nan")


def _peak_mib() -> float:
    """This process's peak RSS in MiB, from VmHWM: getrusage's ru_maxrss survives exec, so a case
    started from a big parent (``make bench``'s, after the 3D CNNs) would report the parent's
    peak instead. Its DataLoader workers' peaks are sampled by ``_TreeMemory``."""
    own = _hwm_mib()
    if own != own:  # no /proc: fall back to getrusage (Linux reports KiB)
        own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    return own


def _write_store(folder: str, n: int) -> dict:
    import torch

    from vidrec.training.feature_store import ShardWriter, merge_parts

    t0 = time.perf_counter()
    torch.manual_seed(0)
    part = Path(folder) / "part-00000"
    writer = ShardWriter(part, total=n)
    for start in range(0, n, 1024):
        block = torch.randn(min(1024, n - start), 1, T, D).half()  # (B, K=1 view, T, D), as FeatureStore stores a clip
        for j in range(len(block)):
            writer.add({"index": start + j, "features": block[j], "error": ""})
    writer.close()
    chunks = merge_parts(folder, [part])
    return {"write_s": time.perf_counter() - t0, "chunks": chunks, "peak_rss_MiB": _peak_mib()}


def _read_store(folder: str, n: int, workers: int, rank: int | None = None) -> dict:
    """One shuffled training epoch of the store at ``folder``; under DDP (``rank``) this rank's half."""
    import torch
    from torch.utils.data import DataLoader

    from vidrec.data.datasets import FeatureStream, collate_clips
    from vidrec.training.feature_store import open_store

    torch.set_num_threads(1)
    records = _records(n)
    class_to_idx = {f"class{c:03d}": c for c in range(CLASSES)}
    t0 = time.perf_counter()
    stream = FeatureStream(records, open_store(folder, shuffle=True, seed=0), train=True, class_to_idx=class_to_idx)
    stream.set_loader(BATCH, workers)
    stream.set_epoch(0)
    loader = DataLoader(stream, batch_size=BATCH, num_workers=workers, collate_fn=collate_clips)
    first, clips, seen = None, 0, set()
    with _TreeMemory() as memory:
        for batch in loader:
            if first is None:
                first = time.perf_counter() - t0
                t1 = time.perf_counter()
            assert batch["features"].shape[1:] == (T, D)
            clips += batch["size"]
            seen.update(batch["index"])
        epoch = time.perf_counter() - t1
    main = _peak_mib()
    return {"first_batch_s": first, "epoch_s": epoch, "clips": clips, "distinct": len(seen), "clips_per_s": clips / epoch,
            "peak_rss_MiB": main, "worker_peak_MiB": memory.worker_peak if workers else None, "rank_pss_MiB": memory.peak, "rank": rank}


def _ddp_rank(rank: int, port: int, folder: str, n: int, out: str) -> None:
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=2)
    try:
        result = _read_store(folder, n, workers=0, rank=rank)
        Path(out, f"rank{rank}.json").write_text(json.dumps(result))
    finally:
        dist.destroy_process_group()


def _read_store_ddp(folder: str, n: int) -> dict:
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with tempfile.TemporaryDirectory() as out:
        mp.spawn(_ddp_rank, args=(port, folder, n, out), nprocs=2, join=True)
        ranks = [json.loads(Path(out, f"rank{r}.json").read_text()) for r in range(2)]
    return {"ranks": ranks}


def _write_files(folder: str, n: int) -> dict:
    import hashlib

    import torch

    from vidrec.training.features import FeatureCache

    t0 = time.perf_counter()
    torch.manual_seed(0)
    Path(folder).mkdir(parents=True)
    for start in range(0, n, 1024):
        block = torch.randn(min(1024, n - start), T, D).half()
        for j in range(len(block)):
            name = hashlib.sha1(str(start + j).encode()).hexdigest() + ".pt"  # as FeatureCache names them
            FeatureCache._save(Path(folder) / name, {"features": block[j].clone()})  # (T, D)
    return {"write_s": time.perf_counter() - t0, "peak_rss_MiB": _peak_mib()}


def _read_files(folder: str, n: int) -> dict:
    """One shuffled epoch the way ``FeatureCache.feature_dataset`` serves it: every file loaded first."""
    import hashlib

    import torch
    from torch.utils.data import DataLoader

    from vidrec.data.datasets import FeatureDataset, collate_clips

    torch.set_num_threads(1)
    records = _records(n)
    class_to_idx = {f"class{c:03d}": c for c in range(CLASSES)}
    t0 = time.perf_counter()
    with _TreeMemory() as memory:
        views = [[torch.load(Path(folder) / (hashlib.sha1(str(i).encode()).hexdigest() + ".pt"), weights_only=True)["features"]]
                 for i in range(n)]
        data = FeatureDataset(records, views, train=True, class_to_idx=class_to_idx)
        loader = DataLoader(data, batch_size=BATCH, shuffle=True, num_workers=0, collate_fn=collate_clips)  # the datamodule's: 0 workers
        first, clips = None, 0
        for batch in loader:
            if first is None:
                first = time.perf_counter() - t0
                t1 = time.perf_counter()
            clips += batch["size"]
        epoch = time.perf_counter() - t1
    return {"first_batch_s": first, "epoch_s": epoch, "clips": clips, "clips_per_s": clips / epoch, "peak_rss_MiB": _peak_mib(),
            "rank_pss_MiB": memory.peak}


CASES = ("write-store", "read-store", "read-store-ddp", "write-files", "read-files")


def _run_case(name: str, folder: str, n: int, workers: int) -> dict:
    if name == "write-store":
        return _write_store(folder, n)
    if name == "read-store":
        return _read_store(folder, n, workers)
    if name == "read-store-ddp":
        return _read_store_ddp(folder, n)
    if name == "write-files":
        return _write_files(folder, n)
    return _read_files(folder, n)


def _case(name: str, folder: Path, n: int, workers: int = 0) -> dict:
    """Run one case in a fresh Python process; returns what it printed (one JSON line)."""
    cmd = [sys.executable, "-m", "benchmarks.feature_store_scale", "--case", name, "--dir", str(folder), "--clips", str(n),
           "--workers", str(workers)]
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")])}
    t0 = time.perf_counter()
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True)
    if proc.returncode != 0:
        raise RuntimeError(f"case {name} ({n} clips) failed:\n{proc.stderr[-3000:]}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    result["process_s"] = time.perf_counter() - t0
    return result


def _size(folder: Path) -> tuple[int, float]:
    files = [p for p in folder.rglob("*") if p.is_file()]
    return len(files), sum(p.stat().st_size for p in files) / 2**30


# --------------------------------------------------------------------------------------
# the benchmark
# --------------------------------------------------------------------------------------


def run(clips: int = CLIPS, file_sizes: tuple[int, ...] = FILE_SIZES) -> list[dict]:
    rows: list[dict] = []
    t_start = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="vidrec-store-bench-", dir="/tmp") as tmp:
        tmp = Path(tmp)

        def store_rows(n: int, reads: tuple[int, ...], ddp: bool) -> None:
            folder = tmp / f"store-{n}"
            written = _case("write-store", folder, n)
            files, gib = _size(folder)
            base = {"layout": STORE, "clips": n, "files": files, "size_GiB": gib, "write_s": written["write_s"]}
            for w in reads:
                r = _case("read-store", folder, n, workers=w)
                assert r["distinct"] == r["clips"] == n, r  # one process: every clip, once
                rows.append({**base, "read by": f"1 process, {w} workers", "first_batch_s": r["first_batch_s"],
                             "clips_per_s": r["clips_per_s"], "peak_rss_MiB": r["peak_rss_MiB"],
                             "worker_peak_rss_MiB": r["worker_peak_MiB"], "rank_peak_pss_MiB": r["rank_pss_MiB"]})
                base = {"layout": STORE, "clips": n}
            if ddp:
                ranks = _case("read-store-ddp", folder, n)["ranks"]
                for r in ranks:
                    rows.append({**base, "read by": f"DDP rank {r['rank']} of 2, 0 workers", "first_batch_s": r["first_batch_s"],
                                 "clips_per_s": r["clips_per_s"], "peak_rss_MiB": r["peak_rss_MiB"],
                                 "rank_peak_pss_MiB": r["rank_pss_MiB"], "epoch clips": r["clips"]})
                    base = {"layout": STORE, "clips": n}
            shutil.rmtree(folder)

        # the Kinetics-size store
        store_rows(clips, reads=(0, 2), ddp=True)
        # growth with the number of clips: today's per-file cache and the store, side by side
        for n in file_sizes:
            folder = tmp / f"files-{n}"
            written = _case("write-files", folder, n)
            files, gib = _size(folder)
            r = _case("read-files", folder, n)
            rows.append({"layout": FILES, "clips": n, "files": files, "size_GiB": gib,
                         "write_s": written["write_s"], "read by": "1 process, 0 workers", "first_batch_s": r["first_batch_s"],
                         "clips_per_s": r["clips_per_s"], "peak_rss_MiB": r["peak_rss_MiB"], "rank_peak_pss_MiB": r["rank_pss_MiB"]})
            shutil.rmtree(folder)
            store_rows(n, reads=(0,), ddp=False)
    rows.append({"layout": f"total benchmark time {time.perf_counter() - t_start:.0f} s"})
    return rows


def _growth(rows: list[dict], layout: str) -> tuple[float, float] | None:
    """(MiB of peak RSS per 1,000 clips, MiB at zero clips) from the smallest and largest 0-worker reads."""
    pts = sorted((r["clips"], r["peak_rss_MiB"]) for r in rows if r.get("layout") == layout and r.get("read by") == "1 process, 0 workers")
    if len(pts) < 2:
        return None
    (n0, m0), (n1, m1) = pts[0], pts[-1]
    slope = (m1 - m0) / (n1 - n0) * 1000
    return slope, m0 - slope * n0 / 1000


def _large_store(rows: list[dict]) -> list[dict]:
    """The rows of the store ``run`` writes first (``--clips``; read with workers and under DDP).

    Found by position, not by size: ``--clips`` may be smaller than, or equal to, a per-file
    cache size. Its first row holds the store's ``files``; the rows after it without ``files``
    are its other reads, up to the next write.
    """
    start = next((k for k, r in enumerate(rows) if r.get("layout") == STORE and "files" in r), None)
    if start is None:
        return []
    group = [rows[start]]
    for r in rows[start + 1 :]:
        if r.get("layout") != STORE or "files" in r:
            break
        group.append(r)
    return group


def interpret(rows: list[dict]) -> str:
    store = _large_store(rows)
    kin = [r for r in store if r.get("read by")]
    if not kin:
        return "Not measured."
    files, n = store[0], store[0]["clips"]
    rss = max(max(r["peak_rss_MiB"], r.get("worker_peak_rss_MiB") or 0) for r in kin)
    pss = max(r["rank_peak_pss_MiB"] for r in kin)
    first = max(r["first_batch_s"] for r in kin)
    files_g, store_g = _growth(rows, FILES), _growth(rows, STORE)
    text = (
        f"The {n:,}-clip store is {files['files']} files ({files['size_GiB']:.1f} GiB; one per clip would be {n:,}). Reading a "
        f"training epoch, no process peaks above {rss:,.0f} MiB RSS and no rank (with its workers) above {pss:,.0f} MiB "
        f"PSS, and the first batch comes {first:.1f} s after opening the store at most: targets under 2 GiB per rank "
        "and 10 s."
    )
    if files_g and store_g:
        text += (
            f" Growth: the per-file cache's peak RSS rises by ~{files_g[0]:.0f} MiB per 1,000 clips (every feature in memory, "
            f"plus a tensor object per file) — ~{files_g[1] + files_g[0] * CLIPS / 1000:,.0f} MiB on every rank at {CLIPS:,} clips "
            "of this shape (and 4 views of 16 x 2048 would be 13x that) — and its first batch waits for every file to "
            f"load; the store's grows by ~{store_g[0]:.1f} MiB per 1,000 clips (the clip records, LitData's index, and "
            "larger chunks: up to 4 are mapped per reader) and its first batch does not wait for the rest."
        )
    return text


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--clips", type=int, default=CLIPS, help=f"clips in the large store (default {CLIPS:,})")
    p.add_argument("--file-sizes", type=int, nargs="*", default=list(FILE_SIZES), help="clip counts for the per-file cache comparison")
    p.add_argument("--case", choices=CASES, help=argparse.SUPPRESS)  # one case, in this process
    p.add_argument("--dir", help=argparse.SUPPRESS)
    p.add_argument("--workers", type=int, default=0, help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.case:
        print(json.dumps(_run_case(args.case, args.dir, args.clips, args.workers)))
    else:
        from benchmarks.run_all import table

        rows = run(args.clips, tuple(args.file_sizes))
        print(table(rows))
        print()
        print(interpret(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
