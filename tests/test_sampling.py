"""vidrec.data.sampling: property tests (hypothesis) plus exact values for the fixed cases."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from vidrec.data.sampling import (
    dense_clip_indices,
    multi_clip_indices,
    sample_indices,
    segment_indices,
    uniform_indices,
)

frame_counts = st.integers(min_value=1, max_value=5000)
clip_lengths = st.integers(min_value=1, max_value=64)
strides = st.integers(min_value=1, max_value=8)
seeds = st.integers(min_value=0, max_value=2**32 - 1)

settings.register_profile("vidrec", max_examples=150, deadline=None)
settings.load_profile("vidrec")


def assert_valid(idx: np.ndarray, n: int, num_frames: int) -> None:
    """The contract every sampler shares: T integer indices, sorted, inside [0, n)."""
    assert isinstance(idx, np.ndarray)
    assert idx.shape == (num_frames,)
    assert np.issubdtype(idx.dtype, np.integer)
    assert idx.min() >= 0 and idx.max() < n
    assert np.all(np.diff(idx) >= 0), idx


# --------------------------------------------------------------------------------------
# segment (TSN)
# --------------------------------------------------------------------------------------


@given(n=frame_counts, t=clip_lengths, seed=seeds)
def test_segment_train_valid_and_one_pick_per_segment(n, t, seed):
    idx = segment_indices(n, t, train=True, rng=np.random.default_rng(seed))
    assert_valid(idx, n, t)
    for k, i in enumerate(idx):
        # segment k covers [k*n/t, (k+1)*n/t); exact integer bounds of the frames it touches
        lo = (k * n) // t
        hi = max(lo, -(-(k + 1) * n // t) - 1)
        assert lo <= i <= hi, (k, i, lo, hi)


@given(n=frame_counts, t=clip_lengths)
def test_segment_eval_picks_each_segment_centre(n, t):
    idx = segment_indices(n, t, train=False)
    assert_valid(idx, n, t)
    expected = [((2 * k + 1) * n) // (2 * t) for k in range(t)]  # floor((k + 0.5) * n / t)
    assert idx.tolist() == expected


def test_segment_eval_exact_values():
    assert segment_indices(100, 4, train=False).tolist() == [12, 37, 62, 87]
    assert segment_indices(8, 8, train=False).tolist() == list(range(8))
    assert segment_indices(10, 1, train=False).tolist() == [5]


@given(n=frame_counts, t=clip_lengths, seed=seeds)
def test_segment_train_deterministic_under_seed(n, t, seed):
    a = segment_indices(n, t, train=True, rng=np.random.default_rng(seed))
    b = segment_indices(n, t, train=True, rng=np.random.default_rng(seed))
    np.testing.assert_array_equal(a, b)


def test_segment_train_is_actually_random():
    draws = {tuple(segment_indices(1000, 8, train=True, rng=np.random.default_rng(s))) for s in range(20)}
    assert len(draws) > 10


@given(n=st.integers(1, 16), extra=st.integers(0, 48), seed=seeds, train=st.booleans())
def test_segment_short_video_repeats_frames_and_covers_first_to_last(n, extra, seed, train):
    t = n + extra  # clip at least as long as the video
    idx = segment_indices(n, t, train=train, rng=np.random.default_rng(seed))
    assert_valid(idx, n, t)
    assert idx[0] == 0 and idx[-1] == n - 1
    if not train:
        assert set(idx.tolist()) == set(range(n))  # eval: every frame used, none invented


# --------------------------------------------------------------------------------------
# uniform
# --------------------------------------------------------------------------------------


@given(n=frame_counts, t=clip_lengths)
def test_uniform_valid_and_spans_whole_video(n, t):
    idx = uniform_indices(n, t)
    assert_valid(idx, n, t)
    assert idx[0] == 0
    if t > 1:
        assert idx[-1] == n - 1
    if n >= t:
        assert len(set(idx.tolist())) == t  # enough frames: no repeats


def test_uniform_exact_values():
    assert uniform_indices(10, 4).tolist() == [0, 3, 6, 9]
    assert uniform_indices(3, 5).tolist() == [0, 0, 1, 2, 2]
    assert uniform_indices(1, 3).tolist() == [0, 0, 0]


# --------------------------------------------------------------------------------------
# dense clips
# --------------------------------------------------------------------------------------


@given(n=frame_counts, t=clip_lengths, stride=strides, seed=seeds, train=st.booleans())
def test_dense_valid_and_evenly_strided(n, t, stride, seed, train):
    idx = dense_clip_indices(n, t, stride=stride, train=train, rng=np.random.default_rng(seed))
    assert_valid(idx, n, t)
    steps = np.diff(idx)
    if (t - 1) * stride + 1 <= n:
        assert np.all(steps == stride)  # the whole clip fits: exact stride, no repeats
    else:
        # too short: starts at 0, strides until the end, then repeats the last frame
        assert idx[0] == 0 and idx[-1] == n - 1
        k = int(np.argmax(idx == n - 1))
        assert np.all(steps[: max(k - 1, 0)] == stride)
        assert np.all(idx[k:] == n - 1)


@given(n=frame_counts, t=clip_lengths, stride=strides)
def test_dense_eval_is_centred(n, t, stride):
    idx = dense_clip_indices(n, t, stride=stride, train=False)
    span = (t - 1) * stride + 1
    if span <= n:
        before, after = idx[0], n - 1 - idx[-1]
        assert before == (n - span) // 2
        assert after - before in (0, 1)


@given(n=frame_counts, t=clip_lengths, stride=strides, seed=seeds)
def test_dense_train_deterministic_under_seed(n, t, stride, seed):
    a = dense_clip_indices(n, t, stride, train=True, rng=np.random.default_rng(seed))
    b = dense_clip_indices(n, t, stride, train=True, rng=np.random.default_rng(seed))
    np.testing.assert_array_equal(a, b)


def test_dense_train_start_varies_and_reaches_both_ends():
    starts = {int(dense_clip_indices(20, 4, 2, train=True, rng=np.random.default_rng(s))[0]) for s in range(300)}
    assert starts == set(range(0, 20 - 7 + 1))  # span 7: every start in [0, 13] occurs


def test_dense_exact_values():
    assert dense_clip_indices(100, 4, stride=2, train=False).tolist() == [46, 48, 50, 52]
    assert dense_clip_indices(100, 4, stride=2, start=10).tolist() == [10, 12, 14, 16]
    assert dense_clip_indices(100, 4, stride=2, start=99).tolist() == [93, 95, 97, 99]  # clamped
    assert dense_clip_indices(5, 4, stride=2, train=False).tolist() == [0, 2, 4, 4]


# --------------------------------------------------------------------------------------
# multi-clip test views
# --------------------------------------------------------------------------------------


@given(n=frame_counts, t=clip_lengths, clips=st.integers(1, 12), stride=strides)
def test_multi_clip_shape_rows_valid_and_spread(n, t, clips, stride):
    views = multi_clip_indices(n, t, clips, stride=stride)
    assert views.shape == (clips, t)
    for row in views:
        assert_valid(row, n, t)
    firsts = views[:, 0]
    assert np.all(np.diff(firsts) >= 0)  # views ordered from the start of the video
    span = (t - 1) * stride + 1
    assert firsts[0] == 0
    if clips > 1:
        assert firsts[-1] == max(n - span, 0)  # last view ends at the video's end


def test_multi_clip_exact_values():
    np.testing.assert_array_equal(
        multi_clip_indices(10, 3, 3),
        [[0, 1, 2], [4, 5, 6], [7, 8, 9]],
    )


# --------------------------------------------------------------------------------------
# sample_indices dispatch
# --------------------------------------------------------------------------------------


@given(
    strategy=st.sampled_from(["segment", "uniform", "dense"]),
    n=frame_counts,
    t=clip_lengths,
    stride=strides,
    seed=seeds,
    train=st.booleans(),
)
def test_sample_indices_matches_the_named_sampler(strategy, n, t, stride, seed, train):
    idx = sample_indices(strategy, n, t, train, rng=np.random.default_rng(seed), stride=stride)
    assert_valid(idx, n, t)
    if strategy == "segment":
        expected = segment_indices(n, t, train, np.random.default_rng(seed))
    elif strategy == "uniform":
        expected = uniform_indices(n, t)
    else:
        expected = dense_clip_indices(n, t, stride, train, np.random.default_rng(seed))
    np.testing.assert_array_equal(idx, expected)
    again = sample_indices(strategy, n, t, train, rng=np.random.default_rng(seed), stride=stride)
    np.testing.assert_array_equal(idx, again)


# --------------------------------------------------------------------------------------
# invalid arguments
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "call",
    [
        pytest.param(lambda: segment_indices(0, 4, train=False), id="segment-n0"),
        pytest.param(lambda: segment_indices(-3, 4, train=True), id="segment-n-negative"),
        pytest.param(lambda: segment_indices(10, 0, train=False), id="segment-t0"),
        pytest.param(lambda: uniform_indices(0, 4), id="uniform-n0"),
        pytest.param(lambda: uniform_indices(10, -1), id="uniform-t-negative"),
        pytest.param(lambda: dense_clip_indices(0, 4), id="dense-n0"),
        pytest.param(lambda: dense_clip_indices(10, 0), id="dense-t0"),
        pytest.param(lambda: dense_clip_indices(10, 4, stride=0), id="dense-stride0"),
        pytest.param(lambda: dense_clip_indices(10, 4, stride=-2), id="dense-stride-negative"),
        pytest.param(lambda: multi_clip_indices(10, 4, 0), id="multi-clips0"),
        pytest.param(lambda: multi_clip_indices(0, 4, 3), id="multi-n0"),
        pytest.param(lambda: multi_clip_indices(10, 4, 3, stride=0), id="multi-stride0"),
        pytest.param(lambda: sample_indices("random", 10, 4, train=True), id="sample-unknown-strategy"),
        pytest.param(lambda: sample_indices("segment", 0, 4, train=True), id="sample-n0"),
    ],
)
def test_invalid_arguments_raise_value_error(call):
    with pytest.raises(ValueError):
        call()
