"""selection_clips: a checkpoint knows which clips chose it, and testing on them is called optimistic."""

from __future__ import annotations

import json
import os
import warnings

import torch

from vidrec.data.manifest import ClipRecord, read_manifest
from vidrec.training.selection_clips import clip_fingerprints, selected_on, selection_warning


def test_a_clip_is_its_resolved_file_and_time_range(tmp_path):
    (tmp_path / "a.mp4").write_bytes(b"")
    os.symlink(tmp_path / "a.mp4", tmp_path / "link.mp4")
    val = [ClipRecord(str(tmp_path / "a.mp4"), "x"), ClipRecord(str(tmp_path / "a.mp4"), "x", start=2.0, end=4.0)]
    prints = clip_fingerprints(val)
    assert prints.dtype == torch.int64 and prints.shape == (2,)
    same_file = [ClipRecord(str(tmp_path / "link.mp4"), "y"), ClipRecord(str(tmp_path / "." / "a.mp4"), "z", start=2.0, end=4.0)]
    assert selected_on(same_file, prints) == 2  # labels and spelling of the path do not matter
    other = [ClipRecord(str(tmp_path / "a.mp4"), "x", start=0.0, end=2.0), ClipRecord(str(tmp_path / "b.mp4"), "x")]
    assert selected_on(other, prints) == 0
    assert selection_warning(other, prints, "test.jsonl") is None
    assert selection_warning(same_file, None, "test.jsonl") is None  # a checkpoint without fingerprints
    assert selection_warning(same_file[:1] + other, prints, "test.jsonl").startswith("1 of 3 test clips (test.jsonl)")


def _test_run(args: list[str]) -> list[str]:
    from vidrec.training.cli import cli_main

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        cli_main(args)
    return [str(w.message) for w in caught if "were validation clips" in str(w.message)]


def test_testing_on_the_validation_clips_warns_and_on_other_clips_does_not(tiny_checkpoint, tiny_dataset, tmp_path, debug_args):
    saved = torch.load(tiny_checkpoint, map_location="cpu", weights_only=True)["vidrec_val_clips"]
    val = read_manifest(tiny_dataset / "val.jsonl")
    assert torch.equal(saved, clip_fingerprints(val))

    # The validation clips listed again under another name and elsewhere (absolute paths), as
    # a test manifest: the UCF101/HMDB51 converters copy test.jsonl to val.jsonl by default.
    copy = tmp_path / "test_copy.jsonl"
    copy.write_text("".join(json.dumps(r.to_json()) + "\n" for r in val))
    common = [*debug_args(tmp_path, tiny_dataset), "--ckpt_path", str(tiny_checkpoint)]
    warned = _test_run(["test", *common, "--data.test_manifest", str(copy)])
    assert len(warned) == 1 and warned[0].startswith(f"{len(val)} of {len(val)} test clips ({copy})")
    assert _test_run(["test", *common, "--data.test_manifest", str(tiny_dataset / "test.jsonl")]) == []
