"""Reasoning apart from the visible reply: ``<think>`` blocks cut out of a reply's text.

Reasoning models send their reasoning in one of three ways: a separate message field
(``reasoning_content`` from vLLM's and SGLang's reasoning parsers and DeepSeek's API,
``reasoning`` from OpenRouter and Ollama), or inline, as ``<think>...</think>`` at the
start of the content (a server without a reasoning parser). The fields are read by the
backend; this module splits inline blocks off the text, so that only the visible reply
is ever parsed as an action.

The split is linear in the text and handles what models and servers really send:

* one or more ``<think>...</think>`` (or ``<thinking>...</thinking>``) blocks anywhere;
* an unterminated ``<think>`` (a reply cut at the token cap while reasoning): the rest
  of the text is reasoning, and the visible reply is what came before it;
* a closing ``</think>`` with no opening tag (templates that put ``<think>`` in the
  prompt, as DeepSeek-R1's does): the text before it is reasoning.

Tag names are matched case-insensitively; whitespace around the visible text left by a
cut block is trimmed, and an empty block (``<think></think>``, what some models send
with reasoning switched off) is no reasoning.
"""

from __future__ import annotations

import re

# An opening or closing tag of a reasoning block.
_TAG = re.compile(r"<(/?)(think|thinking)>", re.IGNORECASE)


def split_reasoning(text: str) -> tuple[str, str | None]:
    """``(visible text, reasoning or None)``: inline reasoning blocks cut out of ``text``."""
    if "<" not in text:
        return text, None
    tags = list(_TAG.finditer(text))
    if not tags:
        return text, None
    visible: list[str] = []
    thoughts: list[str] = []
    pos = 0
    first = tags[0]
    index = 0
    if first.group(1):  # a closing tag before any opening one: all before it is reasoning
        thoughts.append(text[: first.start()])
        pos = first.end()
        index = 1
    while index < len(tags):
        tag = tags[index]
        if tag.group(1):  # a stray closing tag in visible text: left as it is
            index += 1
            continue
        visible.append(text[pos : tag.start()])
        close = next(
            (j for j in range(index + 1, len(tags)) if tags[j].group(1)),
            None,
        )
        if close is None:  # unterminated: the rest is reasoning
            thoughts.append(text[tag.end() :])
            pos = len(text)
            break
        thoughts.append(text[tag.end() : tags[close].start()])
        pos = tags[close].end()
        index = close + 1
    visible.append(text[pos:])
    shown = "".join(visible).strip()
    reasoning = "\n\n".join(t.strip() for t in thoughts if t.strip())
    return shown, reasoning or None


def join_reasoning(*parts: str | None) -> str | None:
    """Reasoning from several sources as one text; None when none has any."""
    found = [p for p in parts if p]
    return "\n\n".join(found) if found else None
