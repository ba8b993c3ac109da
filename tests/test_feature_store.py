"""FeatureStore: LitData chunks holding the features FeatureCache holds (same values, labels,
captions, skipped clips), keyed by the same facts, rebuilt when incomplete, few files, split
across two DDP processes with no clip read twice, and training end to end."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from vidrec.data.clips import SkippedClip
from vidrec.data.datamodule import VideoDataModule
from vidrec.data.datasets import FeatureStream, collate_clips
from vidrec.data.manifest import ClipRecord
from vidrec.data.stream_loader import FeatureStreamLoader
from vidrec.data.transforms import TF_MINUS_ONE_ONE
from vidrec.models.backbone import FrozenBackbone
from vidrec.training.feature_store import FeatureStore, open_store
from vidrec.training.features import FeatureCache, backbone_key

REPO = Path(__file__).resolve().parents[1]
N_CLIPS = 12

pytestmark = pytest.mark.usefixtures("one_torch_thread")


@pytest.fixture
def clips(tmp_path, make_video, moving_square) -> list[ClipRecord]:
    folder = tmp_path / "videos"
    folder.mkdir()
    return [
        ClipRecord(
            video=str(make_video(folder / f"clip{i}.avi", moving_square(i))),
            label="ab"[i % 2],
            captions=[f"square number {i} moves", "a square moves"],
        )
        for i in range(N_CLIPS)
    ]


def _backbone() -> FrozenBackbone:
    # resnet18, not mobilenet_v3_small: random-init MobileNetV3 features round to 0 in float16.
    # Seeded, so that spawned processes build the same random weights.
    torch.manual_seed(0)
    return FrozenBackbone("resnet18", "none")


@pytest.fixture(scope="module")
def backbone() -> FrozenBackbone:
    return _backbone()


def _dm(**kw) -> VideoDataModule:
    kw = {"num_frames": 4, "frame_size": 32, "num_workers": 0, "batch_size": 2, "classes": ["a", "b"], "vocab": [], **kw}
    return VideoDataModule(**kw)


def _eval_data(records, dm: VideoDataModule | None = None):
    return (dm or _dm()).clip_dataset(records, train=False)


def _serve(store: FeatureStore, dataset, **kw) -> FeatureStream:
    return store.feature_dataset(dataset, progress=False, **kw)


def _chunks(location) -> list[Path]:
    return sorted(Path(location).glob("chunk-*.bin"))


def test_store_holds_the_cached_features_labels_and_captions(tmp_path, clips, backbone):
    dataset = _eval_data(clips)
    store = FeatureStore(tmp_path / "store", backbone)
    served = _serve(store, dataset, chunk_items=5)
    assert isinstance(served, FeatureStream) and not served.train and len(served) == N_CLIPS
    assert Path(store.location(dataset)).parent == tmp_path / "store" / backbone_key(backbone)
    cache = FeatureCache(tmp_path / "cache", backbone)
    cache.extract(dataset, progress=False)

    items = list(served)
    assert [it["index"] for it in items] == list(range(N_CLIPS))  # evaluation: in order, each once
    for it in items:
        i = it["index"]
        assert it["features"].dtype == torch.float32 and it["features"].shape == (4, backbone.out_dim)  # (T, D)
        torch.testing.assert_close(it["features"], cache.load(dataset, i)[0].float())  # the same float16 values
        with torch.no_grad():
            direct = backbone(dataset[i]["frames"][None])[0]  # (T, D)
        torch.testing.assert_close(it["features"], direct, rtol=2e-3, atol=2e-3)
        assert it["label"] == i % 2 and it["captions"] == clips[i].captions and it["video"] == clips[i].video
    assert not torch.allclose(items[0]["features"], items[1]["features"], atol=1e-2)

    batch = collate_clips(items[:4])
    assert batch["features"].shape == (4, 4, backbone.out_dim) and batch["label"].tolist() == [0, 1, 0, 1]


def test_few_chunk_files_for_many_clips(tmp_path, clips, backbone):
    dataset = _eval_data(clips)
    store = FeatureStore(tmp_path / "store", backbone)
    assert store.extract(dataset, chunk_items=5, progress=False) == N_CLIPS
    files = [p for p in Path(store.location(dataset)).iterdir()]
    assert len(_chunks(store.location(dataset))) == 3  # 12 clips in chunks of 5, 5, 2
    assert sorted(p.name for p in files if not p.name.startswith("chunk-")) == ["index.json"]
    assert not list((tmp_path / "store").rglob("*.partial"))
    assert store.extract(dataset, chunk_items=5, progress=False) == 0  # complete: nothing recomputed


def test_corrupt_video_is_a_skipped_item_and_the_others_survive(tmp_path, clips, backbone):
    bad = tmp_path / "videos" / "corrupt.mp4"
    bad.write_bytes(os.urandom(3000))
    records = [clips[0], ClipRecord(video=str(bad), label="a"), clips[1]]
    dataset = _eval_data(records)
    store = FeatureStore(tmp_path / "store", backbone)
    with pytest.warns(UserWarning, match="corrupt.mp4"):
        served = _serve(store, dataset)
    items = list(served)
    assert [it["index"] for it in items] == [0, 1, 2]
    assert isinstance(items[1]["skipped"], SkippedClip) and items[1]["skipped"].video == str(bad) and items[1]["skipped"].reason
    batch = collate_clips(items)
    assert batch["size"] == 2 and batch["video"] == [clips[0].video, clips[1].video]
    assert batch["skipped_index"] == [1] and batch["skipped"][0].video == str(bad)
    assert batch["features"].shape == (2, 4, backbone.out_dim)


def test_changed_video_makes_a_new_store(tmp_path, clips, backbone, make_video, moving_square):
    store = FeatureStore(tmp_path / "store", backbone)
    before = store.location(_eval_data(clips))
    _serve(store, _eval_data(clips))

    st = os.stat(clips[1].video)
    os.utime(clips[1].video, ns=(st.st_atime_ns, st.st_mtime_ns + 5_000_000_000))  # same size, new time
    touched = store.location(_eval_data(clips))
    assert touched != before
    make_video(clips[0].video, moving_square(seed=99, num_frames=12))  # new content and size
    changed = _eval_data(clips)
    assert store.location(changed) not in (before, touched)
    assert store.extract(changed, progress=False) == N_CLIPS  # a new store, not the old one reused
    first = next(iter(open_store(store.location(changed), shuffle=False)))
    with torch.no_grad():
        direct = backbone(changed[0]["frames"][None])[0]
    torch.testing.assert_close(first["features"][0].float(), direct, rtol=2e-3, atol=2e-3)
    assert store.location(_eval_data(clips[:-1])) != store.location(changed)  # one clip fewer
    assert store.location(_eval_data(clips[::-1])) != store.location(changed)  # another order


@pytest.mark.parametrize(
    "change",
    [{"num_frames": 6}, {"sampling": "dense"}, {"frame_size": 40}, {"normalization": TF_MINUS_ONE_ONE}, {"seed": 7}],
    ids=["num_frames", "sampling", "frame_size", "normalization", "seed"],
)
def test_sampling_and_transform_make_a_new_store(tmp_path, clips, backbone, change):
    store = FeatureStore(tmp_path / "store", backbone)
    assert store.location(_eval_data(clips)) != store.location(_eval_data(clips, _dm(**change)))


def test_backbone_views_and_train_mode_make_a_new_store(tmp_path, clips, backbone):
    dataset = _eval_data(clips)
    store = FeatureStore(tmp_path / "store", backbone)
    base = store.location(dataset)
    assert store.location(dataset, views=2) != base
    assert store.location(_dm().clip_dataset(clips, train=True)) != base
    others = [
        FrozenBackbone("resnet18", "none", spatial_pooling="grid", grid=2),
        FrozenBackbone("resnet18", "none", backbone_blocks=6),
        FrozenBackbone("mobilenet_v3_small", "none"),
    ]
    locations = {FeatureStore(tmp_path / "store", b).location(dataset) for b in others}
    assert len(locations) == 3 and base not in locations


def test_incomplete_or_killed_store_is_rebuilt(tmp_path, clips, backbone):
    dataset = _eval_data(clips)
    store = FeatureStore(tmp_path / "store", backbone)
    location = Path(store.location(dataset))
    # A killed extraction leaves its partial folder, which is not the store and is cleared.
    partial = location.with_name(location.name + ".partial")
    (partial / "part-00000").mkdir(parents=True)
    (partial / "part-00000" / "chunk-0-0.bin").write_bytes(b"half a chunk")
    assert not store.complete(dataset)
    assert store.extract(dataset, progress=False) == N_CLIPS
    assert store.complete(dataset) and not partial.exists()

    (location / "index.json").unlink()  # a store folder without its index is never read
    assert not store.complete(dataset)
    assert len(list(_serve(store, dataset))) == N_CLIPS
    assert store.complete(dataset)


def test_augmented_views_are_stored_together_and_drawn_at_random(tmp_path, clips, backbone):
    train = _dm(seed=0, color_jitter=0.4).clip_dataset(clips[:4], train=True)
    store = FeatureStore(tmp_path / "store", backbone)
    served = _serve(store, train, views=2, seed=0)
    assert served.train
    raw = {int(r["index"]): r["features"] for r in open_store(store.location(train, views=2, mixed=True), shuffle=False)}
    assert all(f.shape == (2, 4, backbone.out_dim) for f in raw.values())  # (K, T, D)
    for i in range(4):
        assert not torch.allclose(raw[i][0], raw[i][1], atol=1e-2)  # two different augmentations
        with torch.no_grad():
            direct = backbone(train.for_view(1)[i]["frames"][None])[0]
        torch.testing.assert_close(raw[i][1].float(), direct, rtol=2e-3, atol=2e-3)
    for item in served:
        assert any(torch.equal(item["features"], v.float()) for v in raw[item["index"]])
        assert item["captions"] == clips[item["index"]].captions and len(item["caption_ids"]) == 0  # no vocab


def test_training_order_is_seeded_by_epoch(tmp_path, clips, backbone):
    train = _dm().clip_dataset(clips, train=False)
    store = FeatureStore(tmp_path / "store", backbone)
    served = _serve(store, train, train=True, seed=3, chunk_items=3)

    def order(epoch: int) -> list[int]:
        served.set_epoch(epoch)
        return [it["index"] for it in served]

    first = order(1)
    assert sorted(first) == list(range(N_CLIPS))  # one process: every clip, once
    assert order(1) == first  # reproducible
    assert order(2) != first  # reshuffled


def _ids(batches: list[dict]) -> list[int]:
    return [i for batch in batches for i in batch["index"]]


@pytest.mark.parametrize("workers", [0, 2])
def test_training_loader_resumes_mid_epoch_where_it_stopped(tmp_path, clips, backbone, workers):
    # What Lightning does with a checkpoint written mid-epoch: the loader's state_dict() after k
    # batches goes into the resumed run's new loader (load_state_dict), which iterates on.
    train = _dm(seed=0, color_jitter=0.4).clip_dataset(clips, train=True)
    served = _serve(FeatureStore(tmp_path / "store", backbone), train, views=2, seed=3, chunk_items=3)
    epoch = [0]  # the trainer's

    def loader() -> FeatureStreamLoader:
        return FeatureStreamLoader(served, batch_size=2, num_workers=workers, epoch=lambda: epoch[0])

    def run(data: FeatureStreamLoader, e: int, batches: int | None = None) -> list[dict]:
        epoch[0] = e
        it = iter(data)
        return list(it) if batches is None else [next(it) for _ in range(batches)]

    full = loader()
    want = {e: run(full, e) for e in (1, 2)}
    assert sorted(_ids(want[1])) == list(range(N_CLIPS)) and _ids(want[1]) != _ids(want[2])
    assert _ids(run(loader(), 2)) == _ids(want[2])  # an epoch's order is the epoch's, not the loader's count
    for k in (1, 4):
        interrupted = loader()
        before = run(interrupted, 1, k)
        resumed = loader()
        resumed.load_state_dict(interrupted.state_dict())
        # The rest of the epoch, each clip once, in order, with the same view drawn for each.
        for got, expected in zip(before + run(resumed, 1), want[1], strict=True):
            assert got["index"] == expected["index"] and torch.equal(got["features"], expected["features"])
        assert _ids(run(resumed, 2)) == _ids(want[2])  # the next epoch as without the stop
    # A resumed epoch left early (limit_train_batches) is not replayed: the next is a new epoch.
    resumed = loader()
    resumed.load_state_dict(interrupted.state_dict())
    run(resumed, 1, 1)
    assert _ids(run(resumed, 2)) == _ids(want[2])


def test_an_end_of_epoch_position_resumes_with_other_workers(tmp_path, clips, backbone):
    # last.ckpt, written at every epoch's end, holds the loader's position too. Resumed with
    # other workers, the next epoch starts whole (LitData alone failed: its count of the short
    # last batch, 5 + 5 + 5 > 12 clips, exceeded the epoch).
    train = _dm().clip_dataset(clips, train=False)
    served = _serve(FeatureStore(tmp_path / "store", backbone), train, train=True, chunk_items=3)
    ended = FeatureStreamLoader(served, batch_size=5, epoch=lambda: 0)
    assert sorted(_ids(list(ended))) == list(range(N_CLIPS))
    resumed = FeatureStreamLoader(served, batch_size=5, num_workers=2, epoch=lambda: 1)
    resumed.load_state_dict(ended.state_dict())
    assert _ids(list(resumed)) == _ids(list(FeatureStreamLoader(served, batch_size=5, num_workers=2, epoch=lambda: 1)))


def test_training_position_belongs_to_the_store_not_its_path(tmp_path, clips, backbone):
    train = _dm().clip_dataset(clips, train=False)
    store = FeatureStore(tmp_path / "store", backbone)
    served = _serve(store, train, train=True, chunk_items=3)
    full = _ids(list(FeatureStreamLoader(served, batch_size=2)))
    interrupted = FeatureStreamLoader(served, batch_size=2)
    it = iter(interrupted)
    before = _ids([next(it), next(it)])
    state = interrupted.state_dict()

    # The same store at another path (a moved cache_dir): the position holds.
    location = Path(store.location(train, mixed=True))
    shutil.copytree(location, tmp_path / "moved" / location.parent.name / location.name)
    moved = _serve(FeatureStore(tmp_path / "moved", backbone), train, train=True)
    resumed = FeatureStreamLoader(moved, batch_size=2)
    resumed.load_state_dict(state)
    assert before + _ids(list(resumed)) == full

    # Another store (other features: its key differs): the epoch starts over, with a warning.
    other = {**state, "dataset": {**state["dataset"], "input_dir_path": str(tmp_path / "x" / "store-other")}}
    restarted = FeatureStreamLoader(served, batch_size=2)
    with pytest.warns(UserWarning, match="another feature store.*store-other.*starts over"):
        restarted.load_state_dict(other)
    assert _ids(list(restarted)) == full


def test_a_bucket_url_is_read_as_given(tmp_path, clips, backbone):
    # LitData's "local:" prefix takes the object-store path (download into a cache), as s3:// would.
    dataset = _eval_data(clips)
    FeatureStore(tmp_path / "store", backbone).extract(dataset, progress=False)
    remote = FeatureStore(f"local:{tmp_path / 'store'}", backbone, download_dir=str(tmp_path / "downloads"))
    assert remote.location(dataset).startswith("local:")
    served = remote.feature_dataset(dataset)
    assert [it["index"] for it in served] == list(range(N_CLIPS))
    with pytest.raises(ValueError, match="not to a URL"):
        remote.extract(dataset)
    missing = FeatureStore(f"local:{tmp_path / 'nothing'}", backbone, download_dir=str(tmp_path / "downloads2"))
    with pytest.raises(FileNotFoundError, match="no complete feature store at local:"):
        missing.feature_dataset(dataset)


def test_balanced_sampling_refuses_shards_and_files_refuse_a_url():
    with pytest.raises(ValueError, match="balanced_sampling.*feature_store='files'"):
        VideoDataModule(balanced_sampling=True, feature_store="shards", cache_dir="x", classes=[], vocab=[])
    with pytest.raises(ValueError, match="s3://b/f is a URL: only feature_store='shards'"):
        VideoDataModule(cache_dir="s3://b/f", classes=[], vocab=[])
    VideoDataModule(cache_dir="s3://b/f", feature_store="shards", classes=[], vocab=[])


# --------------------------------------------------------------------------------------
# two DDP processes (gloo on CPU), started with torch.multiprocessing
# --------------------------------------------------------------------------------------


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_main(rank: int, world: int, port: int, job: dict) -> None:
    """One DDP process: extract (with the others) and read its share of a store; writes what it read."""
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        dm = _dm(batch_size=job["batch_size"])
        dataset = dm.clip_dataset(job["records"], train=False)
        store = FeatureStore(job["root"], _backbone())
        served = store.feature_dataset(
            dataset, train=job["train"], seed=0, rank=rank, world_size=world, barrier=dist.barrier, progress=False,
            chunk_items=job["chunk_items"],
        )
        served.set_loader(job["batch_size"], job["workers"])
        # fork, as under train.py: a process started by spawn would spawn its workers too (each
        # importing torch again, ~10 s apiece on a small machine).
        loader = torch.utils.data.DataLoader(
            served, batch_size=job["batch_size"], num_workers=job["workers"], collate_fn=collate_clips,
            multiprocessing_context="fork" if job["workers"] else None,
        )
        seen = []
        for epoch in range(job["epochs"]):
            served.set_epoch(epoch)
            seen.append([i for batch in loader for i in batch["index"]])
        out = {"seen": seen, "len": len(served), "batches": len(loader), "complete": store.complete(dataset)}
        Path(job["out"], f"rank{rank}.json").write_text(json.dumps(out))
    finally:
        dist.destroy_process_group()


def _run_ddp(tmp_path, clips, *, train: bool, workers: int = 0, epochs: int = 1, chunk_items: int | None = 2) -> list[dict]:
    job = {"records": clips, "root": str(tmp_path / "store"), "out": str(tmp_path), "train": train, "workers": workers,
           "epochs": epochs, "batch_size": 2, "chunk_items": chunk_items}
    mp.spawn(_ddp_main, args=(2, _free_port(), job), nprocs=2, join=True)
    return [json.loads((tmp_path / f"rank{r}.json").read_text()) for r in range(2)]


@pytest.mark.slow
def test_two_ddp_processes_extract_one_store_and_read_every_clip_once(tmp_path, clips, backbone):
    # Evaluation: each rank extracts its share (one store, merged), then reads its own part of
    # it; together they read every clip exactly once (no drop_last in evaluation).
    ranks = _run_ddp(tmp_path, clips, train=False)
    dataset = _eval_data(clips)
    store = FeatureStore(tmp_path / "store", backbone)
    location = Path(store.location(dataset))
    assert all(r["complete"] for r in ranks) and store.complete(dataset)
    assert [p.name for p in (tmp_path / "store").iterdir()] == [location.parent.name]
    assert [p.name for p in location.parent.iterdir()] == [location.name]  # no .partial left
    assert {p.name.split("-")[1] for p in _chunks(location)} == {"0", "1"}  # both ranks wrote chunks
    seen = [r["seen"][0] for r in ranks]
    assert sorted(seen[0] + seen[1]) == list(range(N_CLIPS))  # every clip once: none twice, none missed
    assert all(r["len"] == len(s) for r, s in zip(ranks, seen))
    # the features each rank wrote are those of one backbone (same seed) and of the right clip
    raw = {int(r["index"]): r["features"] for r in open_store(location, shuffle=False)}
    for i in (0, 7):
        with torch.no_grad():
            direct = backbone(dataset[i]["frames"][None])[0]
        torch.testing.assert_close(raw[i][0].float(), direct, rtol=2e-3, atol=2e-3)


@pytest.mark.slow
@pytest.mark.parametrize("posix_fast", [None, "1"], ids=["local_disk", "parallel_fs"])
def test_two_ddp_processes_train_on_disjoint_equal_shares(tmp_path, clips, backbone, monkeypatch, posix_fast):
    # Training: shuffled, and every rank takes as many batches (a step waits for all ranks):
    # no clip read twice in an epoch, fewer than ranks x batch size left out. LITDATA_POSIX_FAST=1
    # reads as on a parallel file system (NFS, Lustre), where LitData would stripe whole chunks.
    clips = clips + clips[:1]  # 13 clips: one cannot be split evenly
    if posix_fast is not None:
        monkeypatch.setenv("LITDATA_POSIX_FAST", posix_fast)
    ranks = _run_ddp(tmp_path, clips, train=True, workers=2, epochs=2)
    for epoch in range(2):
        seen = [r["seen"][epoch] for r in ranks]
        assert len(seen[0]) == len(seen[1]) == ranks[0]["len"] == ranks[1]["len"]
        together = seen[0] + seen[1]
        assert len(set(together)) == len(together)  # no clip twice
        assert len(clips) - len(together) < 2 * 2  # dropped: fewer than world size x batch size
    assert ranks[0]["batches"] == ranks[1]["batches"]
    assert ranks[0]["seen"][0] != ranks[0]["seen"][1]  # another order next epoch


def test_fit_on_shards_reshuffles_every_epoch(tmp_path, tiny_dataset, debug_args, read_metrics):
    from vidrec.training.cli import cli_main

    cache_dir = tmp_path / "cache"
    cli = cli_main(
        ["fit", *debug_args(tmp_path / "run", tiny_dataset), "--data.cache_dir", str(cache_dir),
         "--data.feature_store", "shards", "--data.num_workers", "2", "--trainer.max_epochs", "2"]
    )
    dm = cli.datamodule
    assert isinstance(dm.datasets["train"], FeatureStream) and isinstance(dm.datasets["val"], FeatureStream)
    assert cli.trainer.global_step > 0
    stores = sorted(p for p in cache_dir.rglob("store-*") if p.is_dir())
    assert len(stores) == 2 and all((p / "index.json").is_file() for p in stores)  # train and val
    assert not list(cache_dir.rglob("*.pt"))
    losses = [float(r["train/loss"]) for r in read_metrics(next((tmp_path / "run").rglob("metrics.csv"))) if r.get("train/loss")]
    assert losses and all(np.isfinite(losses))
    assert np.isfinite(float(cli.trainer.logged_metrics["val/loss"]))
    # The workers read a copy of the dataset; the epoch reaches them through set_epoch, which the
    # training loader calls with the trainer's epoch (the main process's copy shows the last one).
    assert isinstance(cli.trainer.train_dataloader, FeatureStreamLoader)
    assert dm.datasets["train"].source.current_epoch == 1
    # Every checkpoint holds the loader's position, for a resume mid-epoch (weights_only loads it).
    ckpt = torch.load(next((tmp_path / "run").rglob("last.ckpt")), weights_only=True)
    (position,) = ckpt["loops"]["fit_loop"]["state_dict"]["combined_loader"]
    assert position["current_epoch"] == 1 and position["dataset"]["num_workers"] == 2


@pytest.mark.slow
def test_ddp_fit_on_shards_with_train_py(tmp_path, tiny_dataset):
    # The whole path under Lightning's DDP: extraction split across 2 processes, the store read
    # by each without a DistributedSampler (Lightning adds none to an IterableDataset).
    root = tmp_path / "run"
    env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port()), "OMP_NUM_THREADS": "1"}
    env.pop("LOCAL_RANK", None)
    env.pop("WORLD_SIZE", None)
    args = [
        sys.executable, str(REPO / "train.py"), "fit", "--config", str(REPO / "configs" / "debug.yaml"),
        "--data.train_manifest", str(tiny_dataset / "train.jsonl"), "--data.val_manifest", str(tiny_dataset / "val.jsonl"),
        "--data.cache_dir", str(tmp_path / "cache"), "--data.feature_store", "shards",
        "--trainer.strategy", "ddp", "--trainer.devices", "2", "--trainer.accelerator", "cpu", "--trainer.max_epochs", "1",
        "--trainer.default_root_dir", str(root), "--trainer.logger.save_dir", str(root), "--trainer.enable_progress_bar", "false",
    ]
    proc = subprocess.run(args, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "GLOBAL_RANK: 1" in proc.stderr + proc.stdout
    assert sorted(root.rglob("last.ckpt"))
    stores = sorted(p for p in (tmp_path / "cache").rglob("store-*"))
    assert len(stores) == 2 and all((p / "index.json").is_file() for p in stores)
    assert {c.name.split("-")[1] for c in stores[0].glob("chunk-*.bin")} == {"0", "1"}  # both ranks extracted
