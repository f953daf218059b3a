"""Log-probabilities of given continuations, for the attractor probe.

Two sources:

* ``score_with_llama``: exact. The prompt and each continuation are tokenised the way
  ``Llama.create_completion`` tokenises a prompt, evaluated with ``Llama.eval`` and the
  next-token distribution is read from the logits of the last evaluated position
  (log-softmax in float64). A continuation of several tokens is evaluated token by token,
  so its score is the full sequence log-probability ``sum_i log p(c_i | prompt, c_<i)``.
  The KV cache is reused: only the suffix that differs from what the context last
  evaluated is computed, so a run of prompts that extend each other costs little.
  ``LlamaCppBackend`` gives it a context that decodes one token at a time: llama.cpp's
  CPU matrix kernels round differently for different batch shapes (for the embedded
  Q4_K_M model, a prompt evaluated in one batch and the same prompt evaluated token by
  token differ in a next-token log-probability by 0.07 at the median and up to 0.8 for
  improbable tokens, measured over the 12 decisions of the compliant trajectory), so
  only one-token decodes make a score independent of how, and after what, the prompt
  was evaluated.

  Why not ``create_completion(echo=True, logprobs=...)``: in llama-cpp-python 0.3.36 it
  requires ``logits_all=True`` (an ``n_ctx x n_vocab`` float matrix, 2 GiB for Gemma 3 at
  2048 tokens), it sorts the whole 262k vocabulary in Python for every prompt token
  (minutes for one long prompt), and it scores a batched prompt evaluation, so its
  numbers carry the batch-shape rounding above.

* ``score_with_chat_logprobs``: for OpenAI-compatible servers. A chat completion of one
  token with ``logprobs`` and ``top_logprobs=20`` gives the distribution of the reply's
  first token. A continuation that is one token on the server (e.g. ``PRESSED`` for Gemma)
  is scored exactly; for a longer one only its first token is seen, which is an upper
  bound on the sequence probability (flagged ``exact=False``). A first token outside the
  top 20 scores ``-inf`` (flagged, too).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np

TOP_LOGPROBS = 20


@dataclass(frozen=True)
class ContinuationScore:
    """The log-probability (natural log) of one continuation given a prompt."""

    text: str
    logprob: float
    tokens: list[str] = field(default_factory=list)
    token_logprobs: list[float] = field(default_factory=list)
    exact: bool = True
    method: str = "llama.cpp-eval"
    note: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "logprob": _finite_or_none(self.logprob),
            "tokens": list(self.tokens),
            "token_logprobs": [_finite_or_none(x) for x in self.token_logprobs],
            "exact": self.exact,
            "method": self.method,
            "note": self.note,
        }


def _finite_or_none(x: float) -> float | None:
    return x if math.isfinite(x) else None


# ----------------------------------------------------------------- llama.cpp in-process


def llama_prompt_tokens(llm: Any, text: str) -> list[int]:
    """Tokens exactly as ``Llama.create_completion`` makes them for a text prompt."""
    return list(llm.tokenize(text.encode("utf-8"), add_bos=True, special=True))


def _common_prefix(a: Any, b: list[int]) -> int:
    n = min(len(a), len(b))
    if n == 0:
        return 0
    left = np.asarray(a[:n], dtype=np.int64)
    right = np.asarray(b[:n], dtype=np.int64)
    diff = np.nonzero(left != right)[0]
    return int(diff[0]) if diff.size else n


def llama_next_logits(llm: Any, tokens: list[int]) -> np.ndarray:
    """The logits after ``tokens``, reusing whatever prefix the model evaluated last."""
    import llama_cpp

    if not tokens:
        raise ValueError("cannot score an empty prompt")
    if len(tokens) >= llm.n_ctx():
        raise ValueError(f"{len(tokens)} tokens do not fit the context of {llm.n_ctx()}")
    cached = int(llm.n_tokens)
    keep = _common_prefix(llm.input_ids[:cached], tokens)
    keep = min(keep, len(tokens) - 1)  # the last token must be evaluated to get its logits
    if keep < cached and not llm._ctx.kv_cache_seq_rm(-1, keep, -1):
        keep = 0  # partial removal unsupported: evaluate from scratch
    llm.n_tokens = keep
    llm.eval(tokens[keep:])
    ptr = llama_cpp.llama_get_logits_ith(llm.ctx, -1)
    return np.ctypeslib.as_array(ptr, shape=(llm.n_vocab(),)).astype(np.float64)


def _token_logprob(logits: np.ndarray, token: int) -> float:
    top = float(logits.max())
    log_z = top + math.log(float(np.exp(logits - top).sum()))
    return float(logits[token]) - log_z


def continuation_tokens(llm: Any, context: str, continuation: str) -> tuple[list[int], bool]:
    """The continuation's tokens as the joint tokenisation of context+continuation has them.

    Returns ``(tokens, joint)``; ``joint`` is False when the joint tokenisation merges
    across the boundary, in which case the continuation is tokenised on its own.
    """
    base = llama_prompt_tokens(llm, context)
    full = llama_prompt_tokens(llm, context + continuation)
    if full[: len(base)] == base and len(full) > len(base):
        return full[len(base) :], True
    alone = list(llm.tokenize(continuation.encode("utf-8"), add_bos=False, special=False))
    return alone, False


def score_with_llama(llm: Any, context: str, continuations: list[str]) -> list[ContinuationScore]:
    """Exact sequence log-probabilities of each continuation after ``context`` (a prompt)."""
    base = llama_prompt_tokens(llm, context)
    out: list[ContinuationScore] = []
    first_logits: np.ndarray | None = None
    for text in continuations:
        ctoks, joint = continuation_tokens(llm, context, text)
        if not ctoks:
            raise ValueError(f"continuation {text!r} has no tokens")
        logps: list[float] = []
        for i, tok in enumerate(ctoks):
            if i == 0:
                if first_logits is None:
                    first_logits = llama_next_logits(llm, base)
                logits = first_logits
            else:
                logits = llama_next_logits(llm, base + ctoks[:i])
            logps.append(_token_logprob(logits, tok))
        pieces = [
            llm.detokenize([t], special=True).decode("utf-8", "backslashreplace") for t in ctoks
        ]
        out.append(
            ContinuationScore(
                text=text,
                logprob=float(sum(logps)),
                tokens=pieces,
                token_logprobs=logps,
                exact=True,
                method="llama.cpp-eval",
                note="" if joint else "tokenised apart from the prompt (boundary merge)",
            )
        )
    return out


# ----------------------------------------------------------- OpenAI-compatible servers


def parse_chat_first_token(resp: Any, continuations: list[str]) -> list[ContinuationScore]:
    """Score continuations from the first token's ``top_logprobs`` of a chat completion."""
    choices = getattr(resp, "choices", None)
    if not choices:
        raise ValueError("no choices in the response")
    logprobs = getattr(choices[0], "logprobs", None)
    content = getattr(logprobs, "content", None) if logprobs is not None else None
    if not content:
        raise LookupError("the server returned no logprobs")
    first = content[0]
    entries: list[tuple[str, float]] = [
        (str(e.token), float(e.logprob)) for e in (getattr(first, "top_logprobs", None) or [])
    ]
    if getattr(first, "token", None) is not None:
        entries.append((str(first.token), float(first.logprob)))
    if not entries:
        raise LookupError("the server returned no top_logprobs")
    out = []
    for text in continuations:
        matches = [(tok, lp) for tok, lp in entries if tok and text.startswith(tok)]
        if not matches:
            out.append(
                ContinuationScore(
                    text=text,
                    logprob=-math.inf,
                    exact=False,
                    method="chat-top-logprobs",
                    note=f"first token not among the top {TOP_LOGPROBS}",
                )
            )
            continue
        tok, lp = max(matches, key=lambda m: len(m[0]))
        exact = tok == text
        out.append(
            ContinuationScore(
                text=text,
                logprob=lp,
                tokens=[tok],
                token_logprobs=[lp],
                exact=exact,
                method="chat-top-logprobs",
                note="" if exact else "first token only: an upper bound on the sequence",
            )
        )
    return out


async def score_with_chat_logprobs(
    client: Any, model: str, messages: list[dict[str, Any]], continuations: list[str]
) -> list[ContinuationScore]:
    resp = await client.chat.completions.create(
        model=model,
        messages=messages,
        max_tokens=1,
        temperature=1.0,
        logprobs=True,
        top_logprobs=TOP_LOGPROBS,
    )
    return parse_chat_first_token(resp, continuations)
