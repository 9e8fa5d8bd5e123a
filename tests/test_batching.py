"""Batches for language models: contiguous streams for truncated BPTT, random windows, the split."""
from __future__ import annotations

import numpy as np
import pytest

import tinylm as tl
from tinylm.data.batching import ContiguousBatches, batch_shape_that_fits, random_windows, train_val_split

STREAM = np.arange(1000)


def test_split_keeps_the_last_part_for_validation():
    train, val = train_val_split(STREAM, 0.1)
    assert len(train) == 900 and len(val) == 100
    np.testing.assert_array_equal(np.concatenate([train, val]), STREAM)


@pytest.mark.parametrize("fraction, message", [(0.0, "strictly between 0 and 1"), (1.5, "strictly between 0 and 1")])
def test_split_rejects_bad_fractions(fraction, message):
    with pytest.raises(ValueError, match=message):
        train_val_split(STREAM, fraction)


def test_split_rejects_a_text_too_short_to_split():
    with pytest.raises(ValueError, match="a corpus of 3 tokens is too short to split"):
        train_val_split([1, 2, 3], 0.1)


def test_contiguous_batches_shift_targets_by_one_and_rows_continue_across_batches():
    batches = ContiguousBatches(STREAM, batch_size=4, seq_len=10)
    assert len(batches) == 24  # rows of 249 tokens hold 24 windows of 10
    x1, y1, first = batches.next_batch()
    x2, y2, second = batches.next_batch()
    assert x1.shape == y1.shape == (4, 10) and first and not second
    np.testing.assert_array_equal(y1, x1 + 1)  # the stream is 0, 1, 2, ...
    np.testing.assert_array_equal(x2[:, 0], x1[:, -1] + 1)  # each row goes on where it stopped
    np.testing.assert_array_equal(x1[:, 0], [0, 249, 498, 747])


def test_contiguous_batches_start_a_new_pass_after_the_last_batch():
    batches = ContiguousBatches(STREAM, batch_size=4, seq_len=10)
    passes = [batches.next_batch()[2] for _ in range(2 * len(batches))]
    assert passes.count(True) == 2 and passes[len(batches)]
    assert batches.position == 2 * len(batches)
    np.testing.assert_array_equal(next(iter(batches))[0], batches.batch(0)[0])
    assert len(list(batches)) == len(batches)


def test_contiguous_batches_need_enough_text():
    with pytest.raises(ValueError, match=r"batch_size=4 x seq_len=10 needs at least 41 tokens, but the text has only 20"):
        ContiguousBatches(np.arange(20), batch_size=4, seq_len=10)


@pytest.mark.parametrize("num_tokens, shape", [(2049, (32, 64)), (2048, (31, 64)), (65, (1, 64)), (64, (1, 63)), (2, (1, 1))])
def test_a_short_text_gets_fewer_rows_then_one_shorter_row(num_tokens, shape):
    assert batch_shape_that_fits(num_tokens, batch_size=32, seq_len=64) == shape
    assert len(ContiguousBatches(np.arange(num_tokens), *shape)) == 1  # it fits, once


def test_a_batch_needs_two_tokens():
    with pytest.raises(ValueError, match=r"a batch needs at least 2 tokens \(an input and its target\), but the text has only 1"):
        batch_shape_that_fits(1, batch_size=32, seq_len=64)


def test_random_windows_come_from_tl_generator_and_stay_inside_the_text():
    tl.manual_seed(3)
    x, y = random_windows(STREAM, batch_size=8, seq_len=16)
    tl.manual_seed(3)
    x_again, _ = random_windows(STREAM, batch_size=8, seq_len=16)
    assert x.shape == y.shape == (8, 16)
    np.testing.assert_array_equal(x, x_again)
    np.testing.assert_array_equal(y, x + 1)
    np.testing.assert_array_equal(x - x[:, :1], np.broadcast_to(np.arange(16), (8, 16)))  # each row contiguous
    assert x.min() >= 0 and y.max() <= 999
    assert not np.array_equal(random_windows(STREAM, 8, 16)[0], x)  # the generator moved on


def test_random_windows_need_a_window_of_text():
    with pytest.raises(ValueError, match="a window of seq_len=16 needs at least 17 tokens, but the text has only 10"):
        random_windows(np.arange(10), 2, 16)
