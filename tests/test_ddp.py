"""Two-process DDP on CPU (gloo) with the feature cache: every clip extracted exactly once."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from vidrec.data.datamodule import VideoDataModule
from vidrec.data.manifest import read_manifest
from vidrec.models.backbone import FrozenBackbone, pretrained_normalization
from vidrec.training.features import FeatureCache

REPO = Path(__file__).resolve().parents[1]


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_env() -> dict[str, str]:
    """Environment for a ``train.py`` subprocess that starts its own CPU processes (DDP over gloo)."""
    env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port()), "OMP_NUM_THREADS": "1",
           "PYTHONUNBUFFERED": "1"}
    env.pop("LOCAL_RANK", None)  # set by an outer launcher, they would make this run one rank of it
    env.pop("WORLD_SIZE", None)
    return env


def _ddp_fit(cwd: Path, root: Path, train: Path, val: Path, *extra: str, timeout: float) -> subprocess.CompletedProcess:
    """``train.py fit --config configs/debug.yaml`` on two CPU processes (DDP over gloo), under ``root``."""
    args = [
        sys.executable, str(REPO / "train.py"), "fit",
        "--config", str(REPO / "configs" / "debug.yaml"),
        "--data.train_manifest", str(train),
        "--data.val_manifest", str(val),
        "--trainer.strategy", "ddp",
        "--trainer.devices", "2",
        "--trainer.accelerator", "cpu",
        "--trainer.default_root_dir", str(root),
        "--trainer.logger.save_dir", str(root),
        "--trainer.enable_progress_bar", "false",
        *extra,
    ]
    return subprocess.run(args, cwd=cwd, env=_ddp_env(), capture_output=True, text=True, timeout=timeout)


@pytest.mark.slow
def test_ddp_two_cpu_processes_with_feature_cache(tmp_path, tiny_dataset):
    cache_dir = tmp_path / "cache"
    root = tmp_path / "run"
    proc = _ddp_fit(
        tmp_path, root, tiny_dataset / "train.jsonl", tiny_dataset / "val.jsonl", "--data.cache_dir", str(cache_dir), timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "GLOBAL_RANK: 1" in proc.stderr + proc.stdout  # really two processes
    assert sorted(root.rglob("last.ckpt")), "no checkpoint written"

    # Exactly one cache file per clip, at exactly the paths the clips map to: no clip
    # missed, none written twice under another name, nothing half-written left over.
    ckpt = torch.load(sorted(root.rglob("last.ckpt"))[0], map_location="cpu", weights_only=False)
    hp, dm_hp = ckpt["hyper_parameters"], ckpt["datamodule_hyper_parameters"]
    backbone = FrozenBackbone(hp["backbone"], hp["weights"], hp["spatial_pooling"], hp["grid"], hp["trainable_layers"],
                              hp["backbone_blocks"])
    # the normalisation the CLI linked into the datamodule from the model's backbone settings
    normalization = pretrained_normalization(hp["backbone"], hp["weights"])
    assert normalization == backbone.normalization
    dm = VideoDataModule(**{k: v for k, v in dm_hp.items() if not k.startswith("_")}, normalization=normalization)
    cache = FeatureCache(cache_dir, backbone)
    train = read_manifest(tiny_dataset / "train.jsonl")
    val = read_manifest(tiny_dataset / "val.jsonl")
    # cache_train_views=0: the train split is cached as evaluation-style features
    datasets = [dm.clip_dataset(train, train=False), dm.clip_dataset(val, train=False)]
    expected = {cache.path(ds, i) for ds in datasets for i in range(len(ds))}
    assert len(expected) == len(train) + len(val)
    files = {p for p in cache_dir.rglob("*") if p.is_file()}
    assert files == expected, (len(files), len(expected), len(files & expected))
    for p in files:
        item = torch.load(p, map_location="cpu", weights_only=True)
        assert item["features"].shape == (dm_hp["num_frames"], backbone.out_dim)


@pytest.mark.slow
def test_ddp_survives_a_rank_with_nothing_to_learn_or_caption(tmp_path, tiny_dataset):
    """A rank whose training batch is all undecodable clips, and a rank whose validation clips
    have no captions, must still take part in DDP's collectives (before: both hung)."""
    import json

    train = [json.loads(line) for line in (tiny_dataset / "train.jsonl").read_text().splitlines()][:6]
    for row in train:
        row["video"] = str(tiny_dataset / row["video"])
    broken = tmp_path / "broken.mp4"
    broken.write_bytes(b"not a video at all")
    # Batch size 1 and two ranks: some step hands one rank only the broken clip.
    rows = train + [{"video": str(broken), "label": train[0]["label"], "captions": ["a broken clip"]}]
    (tmp_path / "train.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    # Rank 0 validates the captioned clip, rank 1 the one without captions.
    val = [dict(train[0]), {k: v for k, v in train[1].items() if k != "captions"}]
    (tmp_path / "val.jsonl").write_text("".join(json.dumps(r) + "\n" for r in val))
    root = tmp_path / "run"
    try:
        proc = _ddp_fit(
            tmp_path, root, tmp_path / "train.jsonl", tmp_path / "val.jsonl",
            "--data.batch_size", "1", "--trainer.max_epochs", "1", timeout=240,
        )
    except subprocess.TimeoutExpired:
        pytest.fail("DDP training hung: a rank skipped a collective the other waited in")
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert "broken.mp4" in proc.stderr + proc.stdout  # the skip is reported, naming the file
    assert sorted(root.rglob("last.ckpt")), "no checkpoint written"


def _state_dict(root: Path) -> dict[str, torch.Tensor]:
    last = max(root.rglob("last.ckpt"), key=lambda p: p.stat().st_mtime)
    return torch.load(last, map_location="cpu", weights_only=True)["state_dict"]


@pytest.mark.slow
def test_ddp_resume_at_an_epoch_end_equals_the_uninterrupted_run(tmp_path, tiny_dataset, monkeypatch):
    """Each rank resumes its own random state (dropout masks, augmentations, caption draws): a
    2-process run stopped after epoch 0 and resumed from last.ckpt ends with the weights of one
    that was never stopped. Before, every rank took rank 0's state and the weights drifted."""
    monkeypatch.setenv("PYTHONPATH", str(REPO))  # the subprocesses import tests.test_resume.StopAfter

    def fit(name: str, *extra: str) -> subprocess.CompletedProcess:
        proc = _ddp_fit(tmp_path, tmp_path / name, tiny_dataset / "train.jsonl", tiny_dataset / "val.jsonl",
                        "--trainer.max_epochs", "2", *extra, timeout=300)
        assert proc.returncode == 0, proc.stderr[-4000:]
        return proc

    fit("full")
    fit("part", "--trainer.callbacks+=tests.test_resume.StopAfter", "--trainer.callbacks.epochs=1")
    interrupted = max((tmp_path / "part").rglob("last.ckpt"), key=lambda p: p.stat().st_mtime)
    ckpt = torch.load(interrupted, map_location="cpu", weights_only=True)
    assert ckpt["epoch"] == 0
    ranks = ckpt["vidrec_rng_ranks"]  # one rng_state() per rank; vidrec_rng stays rank 0's
    assert len(ranks) == 2 and torch.equal(ranks[0]["torch"], ckpt["vidrec_rng"]["torch"])
    assert not torch.equal(ranks[0]["torch"], ranks[1]["torch"])  # the ranks' states did part ways
    fit("resumed", "--ckpt_path", str(interrupted))

    full, resumed = _state_dict(tmp_path / "full"), _state_dict(tmp_path / "resumed")
    assert full.keys() == resumed.keys()
    for key in full:  # gloo's all-reduce of two ranks is order-free: bit-identical on the CPU
        assert torch.equal(full[key], resumed[key]), key

    # A checkpoint of an older vidrec (one state, rank 0's) still resumes: every rank takes it, as
    # before, with a warning that the run will not continue exactly.
    old = {k: v for k, v in ckpt.items() if k != "vidrec_rng_ranks"}
    torch.save(old, tmp_path / "old.ckpt")
    proc = fit("old", "--ckpt_path", str(tmp_path / "old.ckpt"))
    assert "holds the random state of 1 process(es), this run has 2" in proc.stderr + proc.stdout


def _test_run(root: Path, ckpt: Path, data: Path, test: Path, devices: int, *extra: str) -> dict[str, float]:
    """``train.py test`` of ``ckpt`` on ``test`` with ``devices`` CPU processes: the logged test metrics."""
    import csv

    args = [
        sys.executable, str(REPO / "train.py"), "test", "--config", str(REPO / "configs" / "debug.yaml"),
        "--data.train_manifest", str(data / "train.jsonl"), "--data.val_manifest", str(data / "val.jsonl"),
        "--data.test_manifest", str(test), "--ckpt_path", str(ckpt),
        "--trainer.default_root_dir", str(root), "--trainer.logger.save_dir", str(root),
        "--trainer.enable_progress_bar", "false", "--trainer.accelerator", "cpu", "--trainer.devices", str(devices),
        *(["--trainer.strategy", "ddp"] if devices > 1 else []), *extra,
    ]
    proc = subprocess.run(args, cwd=root.parent, env=_ddp_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    with open(sorted(root.rglob("metrics.csv"))[-1], newline="") as f:
        return {k: float(v) for row in csv.DictReader(f) for k, v in row.items() if k.startswith("test/") and v}


@pytest.mark.slow
def test_ddp_test_scores_each_clip_once(tmp_path, tiny_dataset, tiny_checkpoint):
    """5 test clips on 2 ranks in batches of 2: Lightning's DistributedSampler padded rank 1 with
    clip 0 again, so every test number (top-1/top-5, the losses, the caption scores) counted it
    twice. Now rank 0 scores 3 clips in 2 batches and rank 1 scores 2 in 1 (uneven, no hang),
    and every number equals the 1-process run's."""
    import json

    rows = [json.loads(line) for line in (tiny_dataset / "test.jsonl").read_text().splitlines()[:5]]
    assert len(rows) == 5
    test = tmp_path / "test5.jsonl"
    test.write_text("".join(json.dumps({**r, "video": str(tiny_dataset / r["video"])}) + "\n" for r in rows))
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    one = _test_run(tmp_path / "one", tiny_checkpoint, tiny_dataset, test, 1, "--data.batch_size", "2")
    two = _test_run(tmp_path / "two", tiny_checkpoint, tiny_dataset, test, 2, "--data.batch_size", "2")
    for key in ("test/loss", "test/action_loss", "test/caption_loss", "test/top1", "test/top5", "test/bleu1", "test/cider"):
        assert two[key] == pytest.approx(one[key], rel=1e-4, abs=1e-6), key
