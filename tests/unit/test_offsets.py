from hypothesis import given
from hypothesis import strategies as st

from genesis._offsets import OffsetTracker

TP = ("t", 0)


def test_nothing_marked_nothing_unsent():
    t = OffsetTracker()
    t.fetched(TP, 5)
    t.done(TP, 5)
    assert t.unsent() == {}
    assert t.mark() == {TP: 6}


def test_watermark_stops_at_first_unfinished():
    t = OffsetTracker()
    for o in (10, 11, 12, 15):  # gaps in offsets (compaction) are fine
        t.fetched(TP, o)
    t.done(TP, 11)
    t.done(TP, 15)
    assert t.mark() == {}
    t.done(TP, 10)
    assert t.mark() == {TP: 12}
    t.done(TP, 12)
    assert t.mark() == {TP: 16}


def test_sent_and_forget():
    t = OffsetTracker()
    t.fetched(TP, 0)
    t.done(TP, 0)
    assert t.mark() == {TP: 1}
    t.sent({TP: 1})
    assert t.unsent() == {}
    t.forget({TP})
    t.done(TP, 1)  # a late completion of a revoked partition is ignored
    assert t.watermarks() == {}


@given(st.lists(st.integers(0, 5), min_size=1, max_size=60).map(lambda gaps: gaps), st.randoms())
def test_contiguous_prefix_under_any_completion_order(gaps, rnd):
    offsets, o = [], 0
    for g in gaps:
        o += g + 1
        offsets.append(o)
    t = OffsetTracker()
    for off in offsets:
        t.fetched(TP, off)
    order = offsets[:]
    rnd.shuffle(order)
    finished = set()
    for off in order:
        t.done(TP, off)
        finished.add(off)
        prefix = 0
        while prefix < len(offsets) and offsets[prefix] in finished:
            prefix += 1
        expected = offsets[prefix - 1] + 1 if prefix else None
        assert t.watermarks().get(TP) == expected


def test_hold_keeps_a_mark_before_what_a_layer_above_has_not_finished():
    t = OffsetTracker()
    other = ("t", 1)
    for o in range(10):
        t.fetched(TP, o)
        t.done(TP, o)
    t.fetched(other, 0)
    t.done(other, 0)
    assert t.mark(hold={TP: 4}) == {TP: 4, other: 1}  # a partition without a hold is marked as usual
    t.sent({TP: 4, other: 1})
    assert t.mark(hold={TP: 2}) == {}  # a mark never moves back
    assert t.mark(hold={TP: 7}) == {TP: 7}
    assert t.mark(hold={TP: 99}) == {TP: 10}  # and never past what was handed over
