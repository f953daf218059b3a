"""Run llama-cpp-python's OpenAI-compatible server, as ``python -m llama_cpp.server`` does,
with llama.cpp's AMX kernel off on CPUs that have AMX (it crashes there; the in-process
backend avoids it the same way). Usage: ``python -m tests.helpers.llama_server ARGS``."""

from __future__ import annotations

import runpy
import sys

from obedience.backends._llama_runtime import avoid_amx_kernel_in_this_process

if __name__ == "__main__":
    avoid_amx_kernel_in_this_process()
    sys.argv = ["llama_cpp.server", *sys.argv[1:]]
    runpy.run_module("llama_cpp.server", run_name="__main__", alter_sys=True)
