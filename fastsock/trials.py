"""The order of paired trials: randomized, interleaved, balanced (RMIT, Abedi & Brecht 2017).

A *block* is a set of things measured against each other (A and B; or UNIX and TCP of one
point; or six servers at one point). In every round each block runs once, its members back to
back, so the members' values of one round are paired in time. Across rounds:

- the blocks run in a fresh random order every round, so no block always follows another;
- within a block, the members take turns in each position: rounds come in cycles of ``k`` (the
  block's size); a cycle uses the ``k`` rotations of a random base order, in a random order, so
  in every cycle each member runs first exactly once (for A/B: each pair of rounds has A first
  once and B first once, in a random order).

The order depends only on the seed: a run can be replayed, and the tests can check it.
"""

from __future__ import annotations

import random
from collections.abc import Hashable, Sequence
from typing import TypeVar

T = TypeVar("T", bound=Hashable)


def block_orders(members: Sequence[T], rounds: int, rng: random.Random) -> list[list[T]]:
    """The members' order in each of ``rounds`` rounds (see the module's docstring)."""
    base = list(members)
    rng.shuffle(base)
    k = len(base)
    if k == 0:
        return [[] for _ in range(rounds)]
    shifts: list[int] = []
    while len(shifts) < rounds:
        cycle = list(range(k))
        rng.shuffle(cycle)
        shifts += cycle
    return [base[s:] + base[:s] for s in shifts[:rounds]]


def schedule_blocks(
    blocks: Sequence[Sequence[T]], rounds: int, seed: int | None = None
) -> list[list[list[T]]]:
    """Round by round, the blocks to run in order, each as its members in their balanced
    rotating order; the blocks' order is shuffled anew every round."""
    rng = random.Random(seed)
    per_block = [block_orders(b, rounds, rng) for b in blocks]
    out = []
    for r in range(rounds):
        idx = list(range(len(blocks)))
        rng.shuffle(idx)
        out.append([per_block[i][r] for i in idx])
    return out


def schedule(blocks: Sequence[Sequence[T]], rounds: int, seed: int | None = None) -> list[list[T]]:
    """:func:`schedule_blocks` with each round flattened: the members to run, in order."""
    return [[m for b in r for m in b] for r in schedule_blocks(blocks, rounds, seed)]


def ab_order(trials: int, seed: int | None = None) -> list[tuple[str, str]]:
    """``fastsock ab``'s trial order: per trial, ("a", "b") or ("b", "a"), A first in exactly
    ``trials // 2`` or ``trials // 2 + 1`` of them, in a random sequence."""
    return [tuple(r) for r in schedule([("a", "b")], trials, seed)]  # type: ignore[misc]
