"""The trial order: random, yet balanced, and every block's members adjacent (paired)."""

from __future__ import annotations

from collections import Counter

from hypothesis import given
from hypothesis import strategies as st

from fastsock import trials


@given(st.integers(1, 5), st.integers(1, 6), st.integers(0, 2**32))
def test_every_member_is_first_once_per_cycle(k: int, cycles: int, seed: int) -> None:
    members = [f"m{i}" for i in range(k)]
    import random

    orders = trials.block_orders(members, k * cycles, random.Random(seed))
    assert all(sorted(o) == sorted(members) for o in orders)
    for c in range(cycles):
        firsts = Counter(o[0] for o in orders[c * k : (c + 1) * k])
        assert firsts == Counter(members)


@given(st.integers(1, 40), st.integers(0, 2**32))
def test_ab_order_is_balanced(n: int, seed: int) -> None:
    order = trials.ab_order(n, seed)
    assert len(order) == n
    assert all(sorted(t) == ["a", "b"] for t in order)
    a_first = sum(t[0] == "a" for t in order)
    assert n // 2 <= a_first <= n // 2 + 1


def test_blocks_stay_adjacent_and_the_order_is_random_but_replayable() -> None:
    blocks = [("u1", "t1"), ("u2", "t2"), ("s1", "s2", "s3")]
    rounds = trials.schedule(blocks, 12, seed=7)
    for r in rounds:
        assert sorted(r) == sorted(m for b in blocks for m in b)
        for b in blocks:
            pos = sorted(r.index(m) for m in b)
            assert pos == list(range(pos[0], pos[0] + len(b)))  # back to back
    assert rounds == trials.schedule(blocks, 12, seed=7)
    assert rounds != trials.schedule(blocks, 12, seed=8)
    # the blocks' order varies between rounds (random, not a fixed rotation)
    assert len({tuple(r) for r in rounds}) > 6
