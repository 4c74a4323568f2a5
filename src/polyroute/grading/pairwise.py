"""A blind pairwise judgement: which of two answers to one prompt is better.

Why pairwise rather than two pointwise scores: shadow mode asks whether the routed model's answer
is as good as the default model's, and judges tell two answers apart more reliably than they put
each on an absolute scale. Why blind: the judge sees "Answer 1" and "Answer 2" in an order drawn
per request, never the models' names, so neither a name nor a fixed position can sway it.
"""

from __future__ import annotations

import re

PAIRWISE_RUBRIC = """\
You are comparing two answers to the same prompt. Judge only which answer is more correct and
does better what the prompt asks; ignore length and style unless the prompt asks for them. If
both are equally good (or equally wrong), say it is a tie.

## Prompt
{prompt}

## Answer 1
{first}

## Answer 2
{second}

Reply with one short sentence of reasoning, then a last line of the form
"Winner: 1", "Winner: 2" or "Winner: tie".
"""

_WINNER = re.compile(r"winner\W{0,4}\s*(1|2|tie)\b", re.IGNORECASE)


def pairwise_prompt(prompt: str, first: str, second: str,
                    rubric: str = PAIRWISE_RUBRIC) -> str:
    """The text sent to the judge for one pair, in the order given."""
    return rubric.format(prompt=prompt, first=first, second=second)


def parse_winner(reply: str) -> str | None:
    """``first``, ``second`` or ``tie`` from the last ``Winner:`` line; None if unreadable."""
    found = _WINNER.findall(reply)
    if not found:
        return None
    return {"1": "first", "2": "second"}.get(found[-1].lower(), "tie")
