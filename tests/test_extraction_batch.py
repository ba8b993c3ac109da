"""Extraction batch size "auto": the doubling search, the CPU budget, the options that accept it
(datamodule, train.py's config, extract) and cached features that do not depend on it."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from vidrec.apps import extract
from vidrec.data.datamodule import VideoDataModule
from vidrec.data.manifest import ClipRecord, write_manifest
from vidrec.models.backbone import FrozenBackbone
from vidrec.training.extraction_batch import clips_per_forward, cpu_clips, largest_fitting, sample_item
from vidrec.training.features import FeatureCache

pytestmark = pytest.mark.usefixtures("one_torch_thread")

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture
def clips(tmp_path, make_video, moving_square) -> list[ClipRecord]:
    folder = tmp_path / "videos"
    folder.mkdir()
    return [ClipRecord(video=str(make_video(folder / f"clip{i}.avi", moving_square(i))), label="a") for i in range(5)]


def _dm(**kw) -> VideoDataModule:
    return VideoDataModule(**{"num_frames": 4, "frame_size": 32, "num_workers": 0, "classes": ["a"], "vocab": [], **kw})


# -- the search ---------------------------------------------------------------------------


def test_search_doubles_until_the_forward_runs_out_of_memory():
    tried = []

    def forward_fits(n: int) -> bool:
        tried.append(n)
        if n > 12:  # what a CUDA forward of too many clips raises
            raise torch.OutOfMemoryError(f"CUDA out of memory: {n} clips")
        return True

    assert largest_fitting(forward_fits, cap=1024) == 8
    assert tried == [1, 2, 4, 8, 16]  # stops at the first failure


def test_search_keeps_under_the_memory_limit_and_the_cap():
    assert largest_fitting(lambda n: n * 100 <= 700, cap=1024) == 4  # 8 x 100 would pass the limit
    assert largest_fitting(lambda n: True, cap=100) == 64
    assert largest_fitting(lambda n: True, cap=1) == 1


def test_search_answers_one_when_nothing_fits():
    def never(n: int) -> bool:
        raise torch.OutOfMemoryError("CUDA out of memory")

    assert largest_fitting(never, cap=64) == 1  # extraction then fails on its own, with the real error


# -- the CPU budget -------------------------------------------------------------------------


def test_cpu_auto_is_sixteen_frames_of_112_px_per_forward():
    assert cpu_clips(frames_per_item=8, pixels_per_frame=112 * 112) == 2  # configs/synthetic.yaml's clips
    assert cpu_clips(frames_per_item=4, pixels_per_frame=112 * 112) == 4
    assert cpu_clips(frames_per_item=16, pixels_per_frame=112 * 112) == 1
    assert cpu_clips(frames_per_item=32, pixels_per_frame=112 * 112) == 1  # never below one clip
    assert cpu_clips(frames_per_item=8, pixels_per_frame=224 * 224) == 1  # 4x the pixels: a quarter of the frames
    assert cpu_clips(frames_per_item=4, pixels_per_frame=32 * 32) == 49  # 196 frames of 32 px


def test_cpu_auto_counts_the_frames_of_a_real_item(clips):
    dm = _dm()
    one_view = sample_item(dm.clip_dataset(clips, train=False), range(len(clips)))
    assert one_view["frames"].shape == (4, 3, 32, 32)  # (T, 3, S, S)
    assert clips_per_forward("auto", one_view, None, "cpu") == 49
    three_views = sample_item(_dm(test_views=3).clip_dataset(clips, train=False, test=True), range(len(clips)))
    assert three_views["frames"].shape == (3, 4, 3, 32, 32)  # (N, T, 3, S, S): 12 frames per clip
    assert clips_per_forward("auto", three_views, None, "cpu") == 196 // 12


def test_no_decodable_clip_gives_one(tmp_path):
    bad = tmp_path / "bad.mp4"
    bad.write_bytes(b"\0" * 100)
    item = sample_item(_dm().clip_dataset([ClipRecord(video=str(bad), label="a")], train=False), range(1))
    assert item is None and clips_per_forward("auto", item, None, "cpu") == 1


def test_an_integer_is_used_as_given_and_nonsense_is_refused():
    assert clips_per_forward(3, None, None, "cpu") == 3
    for bad in (0, -2, 2.5, "8", "big", True):
        with pytest.raises(ValueError, match="batch_size must be 'auto' or an integer >= 1"):
            clips_per_forward(bad, None, None, "cpu")


# -- features do not depend on it -------------------------------------------------------------


def test_cached_features_are_identical_for_auto_and_explicit_batch_sizes(tmp_path, clips):
    backbone = FrozenBackbone("resnet18", "none")  # as test_feature_cache: random-init features well above 0 in float16
    dataset = _dm().clip_dataset(clips, train=False)
    features, rng = {}, {}
    for size in ("auto", 1, 3):  # auto: 49 clips, i.e. all 5 in one forward; 3 leaves a short last batch
        cache = FeatureCache(tmp_path / f"cache-{size}", backbone)
        torch.manual_seed(0)
        assert cache.extract(dataset, batch_size=size, progress=False) == len(clips)
        rng[size] = torch.get_rng_state()
        features[size] = torch.stack([cache.load(dataset, i)[0] for i in range(len(clips))])  # (5, T, D) float16
    assert features["auto"].abs().mean() > 1e-2
    assert torch.equal(features["auto"], features[1]) and torch.equal(features["auto"], features[3])  # bit for bit
    # Sizing "auto" decodes a clip, but leaves the random stream that training goes on with as it was.
    assert torch.equal(rng["auto"], rng[1]) and torch.equal(rng["auto"], rng[3])


# -- the options that take it ----------------------------------------------------------------


def test_datamodule_takes_auto_or_an_integer():
    assert _dm().extract_batch_size == "auto"
    assert _dm(extract_batch_size=5).extract_batch_size == 5
    assert _dm(batch_size=2).extract_batch_size == "auto"  # the training batch is not the extraction batch
    for bad in (0, "big"):
        with pytest.raises(ValueError, match="extract_batch_size must be 'auto' or an integer >= 1"):
            _dm(extract_batch_size=bad)


def test_train_py_config_takes_auto_or_an_integer(tiny_dataset, tmp_path):
    from vidrec.training.cli import cli_main

    args = ["--config", str(REPO / "configs" / "debug.yaml"), "--data.train_manifest", str(tiny_dataset / "train.jsonl"),
            "--trainer.default_root_dir", str(tmp_path), "--trainer.logger.save_dir", str(tmp_path)]
    assert cli_main(args, run=False).datamodule.extract_batch_size == "auto"  # base.yaml's
    assert cli_main([*args, "--data.extract_batch_size", "3"], run=False).datamodule.extract_batch_size == 3
    with pytest.raises(SystemExit):
        cli_main([*args, "--data.extract_batch_size", "big"], run=False)


def test_extract_takes_auto_and_writes_what_a_number_writes(tiny_checkpoint, clips, tmp_path):
    manifest = write_manifest(tmp_path / "clips.jsonl", clips)
    outs = {}
    for size in ("auto", "2"):
        outs[size] = tmp_path / f"feats-{size}"
        args = [str(manifest), "--ckpt", str(tiny_checkpoint), "--out", str(outs[size]), "--device", "cpu", "--workers", "0"]
        assert extract.main([*args, "--batch-size", size]) == 0
    files = sorted(p.name for p in outs["auto"].glob("*.npy"))
    assert len(files) == len(clips)
    for name in files:
        np.testing.assert_array_equal(np.load(outs["auto"] / name), np.load(outs["2"] / name))
    for bad in ("0", "big"):
        with pytest.raises(SystemExit) as usage:
            extract.main([*args, "--batch-size", bad])
        assert usage.value.code == 2
