"""Pure streaming rules: the byte-credit pacer and Markdown block boundaries."""

from __future__ import annotations

import itertools
import random

import pytest
from markdown_it import MarkdownIt

from rt_notebook.render.blocks import BlockScanner
from rt_notebook.render.pacing import Pacer


def test_pacer_publishes_the_first_update_at_once_then_waits_for_credit_and_time():
    pacer = Pacer()
    pacer.grow(3)
    assert pacer.due(100.0, 3)
    pacer.published(100.0, 3)
    pacer.grow(10)  # 7 characters earn 98 bytes: not enough for 10 + framing
    assert pacer.wait_time(100.2, 10) is None
    pacer.grow(40)
    assert pacer.wait_time(100.01, 40) == pytest.approx(0.04)
    assert pacer.due(100.06, 40)


@pytest.mark.parametrize("rate", [20, 50, 1_000, 1_000_000])
@pytest.mark.parametrize("tail_grows", [True, False])
def test_resent_bytes_stay_within_ratio_of_the_text_at_every_rate(rate, tail_grows):
    """Whole-text resends (tail_grows) or a short tail: bytes at most ratio times the
    text, and at most one update per min_interval."""
    pacer = Pacer()
    length, sent, updates = 0, 0, 0
    for step in range(20_000):
        now = step / rate
        length += 5
        pacer.grow(length)
        cost = length if tail_grows else length % 400
        if pacer.due(now, cost):
            pacer.published(now, cost)
            sent += cost + pacer.overhead
            updates += 1
    assert sent <= pacer.ratio * length + 5 + pacer.overhead
    assert updates <= (20_000 / rate) / pacer.min_interval + 1
    assert updates >= 1


def blocks_of(text: str, steps: list[int]) -> list[str]:
    scanner, cuts = BlockScanner(), [0]
    for end in steps:
        boundary = scanner.feed(text[:end])
        assert boundary >= cuts[-1]  # boundaries never move back
        if boundary > cuts[-1]:
            cuts.append(boundary)
    cuts.append(len(text))
    return [text[a:b] for a, b in itertools.pairwise(cuts)]


def test_paragraphs_become_blocks_as_soon_as_the_next_one_starts():
    text = "First para\ngoes on.\n\nSecond one.\n\n\nThird"
    assert blocks_of(text, list(range(1, len(text) + 1))) == [
        "First para\ngoes on.\n\n",
        "Second one.\n\n\n",
        "Third",
    ]


def test_fences_lists_and_indented_code_are_never_cut_inside():
    text = (
        "Intro\n\n```python\ndef f():\n\n    return 1\n\nx = 2\n```\n\n"
        "- a\n\n  still a\n- b\n\n    indented code\n\n~~~~\n~~~\n\nnot closed\n~~~~\n\nEnd\n"
    )
    blocks = blocks_of(text, list(range(1, len(text) + 1)))
    assert blocks == [
        "Intro\n\n",
        "```python\ndef f():\n\n    return 1\n\nx = 2\n```\n\n",
        "- a\n\n  still a\n- b\n\n    indented code\n\n",
        "~~~~\n~~~\n\nnot closed\n~~~~\n\n",
        "End\n",
    ]


def test_a_backtick_run_with_backticks_after_it_is_not_a_fence():
    text = "``` inline ``` code\n\nnext\n"
    assert blocks_of(text, [len(text)]) == ["``` inline ``` code\n\n", "next\n"]


def test_blocks_render_as_the_whole_text_does():
    """Random Markdown fed in random steps: each block parsed alone gives the same
    top-level block types as the whole text (lists aside, which may split in two)."""
    pieces = [
        "A paragraph with *words*.\n",
        "```\ncode\n\nmore code\n```\n",
        "# Heading\n",
        "> quoted\n> text\n",
        "1. one\n2. two\n",
        "    indented\n",
        "~~~md\n# not a heading\n\n~~~\n",
        "| a | b |\n|---|---|\n| 1 | 2 |\n",
    ]
    parser = MarkdownIt("commonmark")
    rng = random.Random(7)
    for _ in range(200):
        text = "\n".join(rng.choice(pieces) for _ in range(rng.randint(1, 8)))
        steps = sorted({rng.randint(1, len(text)) for _ in range(10)} | {len(text)})
        blocks = blocks_of(text, steps)
        assert "".join(blocks) == text

        def kinds(source: str) -> list[str]:
            return [t.type for t in parser.parse(source) if t.level == 0 and t.nesting >= 0]

        def merged(found: list[str]) -> list[str]:
            # A list cut at a blank line reads as two lists: count a run of lists once.
            return [
                k
                for i, k in enumerate(found)
                if not (k.endswith("list_open") and found[i - 1 : i] == [k])
            ]

        assert merged([k for b in blocks for k in kinds(b)]) == merged(kinds(text)), text
