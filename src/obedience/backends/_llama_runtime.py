"""llama.cpp process-wide concerns: where its log lines go, and how a model is constructed.

Logs. llama.cpp writes its log from C through one process-wide callback; llama-cpp-python
installs one that prints some lines (e.g. ``llama_kv_cache_iswa: using full-size SWA
cache``, logged at error level) to stderr even with ``verbose=False``. We replace it with a
callback that keeps every line: held in memory until a run directory is known, then
appended to ``RUN_DIR/llama.log``. Lines reach the terminal (the original stderr, which
llama-cpp-python's own fd-level silencing during a load does not touch) only when echoing
is switched on (``obedience run --verbose``).

Construction. On CPUs with AMX, llama.cpp's AMX matrix kernel (an "extra buffer type")
crashes the process with a segmentation fault on the first batched decode (seen with the
build in use here for both embedded models; gdb shows ``ggml_backend_amx_mul_mat``). On such
CPUs models are loaded without extra buffer types; elsewhere nothing changes.
"""

from __future__ import annotations

import collections
import contextlib
import ctypes
import os
import threading
from pathlib import Path
from typing import Any, TextIO

LOG_FILE = "llama.log"
_BUFFERED_LINES = 5000  # before a run directory is known; older lines are dropped


class _LlamaLog:
    """The sink of llama.cpp's log callback. Thread-safe: llama.cpp logs from any thread."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: collections.deque[str] = collections.deque(maxlen=_BUFFERED_LINES)
        self._path: Path | None = None
        self._file: TextIO | None = None
        self._echo_fd: int | None = None
        self._callback: Any = None  # the ctypes function object must stay alive

    def write(self, text: str) -> None:
        with self._lock:
            if self._echo_fd is not None:
                with contextlib.suppress(OSError):
                    os.write(self._echo_fd, text.encode("utf-8", "replace"))
            if self._path is None:
                self._pending.append(text)
                return
            try:
                if self._file is None:
                    self._file = self._path.open("a", encoding="utf-8")
                self._file.write(text)
                self._file.flush()
            except OSError:
                pass  # a log line must never stop a run

    def attach(self, path: Path) -> None:
        """Send held and future lines to ``path`` (created on the first line only)."""
        with self._lock:
            if self._file is not None:
                self._file.close()
            self._file = None
            self._path = path
            pending = "".join(self._pending)
            self._pending.clear()
        if pending:
            self.write(pending)

    def detach(self) -> None:
        with self._lock:
            if self._file is not None:
                self._file.close()
            self._file = None
            self._path = None

    def echo(self, on: bool) -> None:
        with self._lock:
            if on and self._echo_fd is None:
                self._echo_fd = os.dup(2)  # the real stderr, whatever is redirected later
            elif not on and self._echo_fd is not None:
                os.close(self._echo_fd)
                self._echo_fd = None

    def install(self) -> None:
        """Make this the llama.cpp log callback (after llama-cpp-python installed its own)."""
        if self._callback is not None:
            return
        import llama_cpp

        def on_log(_level: int, text: bytes | None, _user_data: Any) -> None:
            if text:
                self.write(text.decode("utf-8", "replace"))

        self._callback = llama_cpp.llama_log_callback(on_log)
        llama_cpp.llama_log_set(self._callback, ctypes.c_void_p(0))


LLAMA_LOG = _LlamaLog()


def attach_llama_log(run_dir: Path) -> None:
    """Write llama.cpp's log lines (those already held too) to ``run_dir/llama.log``."""
    LLAMA_LOG.attach(Path(run_dir) / LOG_FILE)


def detach_llama_log() -> None:
    LLAMA_LOG.detach()


def echo_llama_log(on: bool = True) -> None:
    """Also show llama.cpp's log lines on stderr (``--verbose``)."""
    LLAMA_LOG.echo(on)


def cpu_has_amx(cpuinfo: str | None = None) -> bool:
    if cpuinfo is None:
        try:
            cpuinfo = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
        except OSError:
            return False
    for line in cpuinfo.splitlines():
        if line.startswith("flags"):
            return any(flag.startswith("amx_") for flag in line.split())
    return False


_construct_lock = threading.Lock()


def new_llama(path: Path, **kwargs: Any) -> Any:
    """``llama_cpp.Llama(path, **kwargs)`` with logs routed and, on AMX CPUs, the AMX kernel off."""
    import llama_cpp
    import llama_cpp.llama as llama_module

    LLAMA_LOG.install()
    if not cpu_has_amx():
        return llama_cpp.Llama(str(path), **kwargs)
    # ``Llama`` exposes no option for extra buffer types; it takes its model parameters
    # from this function, so it is wrapped for the duration of one construction.
    module: Any = llama_module.llama_cpp  # type: ignore[attr-defined]
    defaults = module.llama_model_default_params

    def without_extra_buffers() -> Any:
        params = defaults()
        params.use_extra_bufts = False
        return params

    with _construct_lock:
        module.llama_model_default_params = without_extra_buffers
        try:
            return llama_cpp.Llama(str(path), **kwargs)
        finally:
            module.llama_model_default_params = defaults


def avoid_amx_kernel_in_this_process() -> bool:
    """Turn llama.cpp's extra buffer types off for every model this process loads.

    For a process that hands model loading to llama-cpp-python itself (its OpenAI server,
    for example) on a CPU with AMX, where the AMX kernel crashes (see the module
    docstring). Returns whether anything was changed.
    """
    if not cpu_has_amx():
        return False
    import llama_cpp.llama as llama_module

    module: Any = llama_module.llama_cpp  # type: ignore[attr-defined]
    defaults = module.llama_model_default_params

    def without_extra_buffers() -> Any:
        params = defaults()
        params.use_extra_bufts = False
        return params

    module.llama_model_default_params = without_extra_buffers
    return True
