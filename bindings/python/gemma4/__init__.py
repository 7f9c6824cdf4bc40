"""gemma4: Python bindings (ctypes, no compiled code) for libgemma4, a C runtime for Google's
Gemma 4 text models.

    import gemma4
    with gemma4.Model.load("path/to/gemma-4-E2B-it") as model:
        for piece in model.chat([{"role": "user", "content": "Why is the sky blue?"}]):
            print(piece, end="", flush=True)

The shared library is found through $GEMMA4_LIBRARY (file or directory), the package
directory, or the system library path. Errors raise Gemma4Error subclasses carrying .status
(the C status code), .name and .message.
"""
from . import _lib
from ._lib import ABI_VERSION, PRECISION_BF16, PRECISION_FP32
from .errors import (BufferTooSmallError, BusyError, CancelledError, ConfigError, ContextFullError,
                     DeviceError, FormatError, Gemma4Error, InternalError, InvalidArgumentError,
                     InvalidTokenError, IoError, NoTokenizerError, OutOfMemoryError,
                     UnsupportedError)
from .chat import DEFAULT_MAX_TOKENS
from .model import Model, ModelInfo, Session, SessionInfo

__version__ = "0.1.0"


def Llama(model_path, n_ctx=0, n_threads=None, n_gpu_layers=0, verbose=True):
    """A Model opened the way llama_cpp.Llama is constructed, so llama-cpp-python code that
    calls create_chat_completion ports by changing the import. n_gpu_layers != 0 selects the
    CUDA engine (which holds the whole model); verbose is accepted and ignored (the library
    prints nothing; see set_log_callback)."""
    return Model.load(model_path, device="cuda" if n_gpu_layers else "cpu",
                      n_ctx=n_ctx or 0, n_threads=n_threads or 0)

_log_fn = None  # keeps the ctypes callback alive while the library holds it


def library_version():
    """Version string of the loaded libgemma4 ("0.1.0")."""
    return _lib.lib.gemma4_version().decode("ascii")


def library_path():
    """Path of the loaded libgemma4 shared library."""
    return _lib.lib._gemma4_path


def status_name(status):
    return _lib.lib.gemma4_status_name(int(status)).decode("ascii")


def set_log_callback(fn):
    """fn(level, message) receives progress/warning messages (levels 0 error .. 3 debug), from
    any thread; None removes it. Exceptions raised by fn are ignored."""
    global _log_fn
    if fn is None:
        errors_check(_lib.lib.gemma4_set_log_callback(_lib.LOG_FN(), None))
        _log_fn = None
        return

    def trampoline(level, message, user):
        try:
            fn(level, message.decode("utf-8", "replace") if message else "")
        except BaseException:
            pass

    cb = _lib.LOG_FN(trampoline)
    errors_check(_lib.lib.gemma4_set_log_callback(cb, None))
    _log_fn = cb


def set_memory_budget(nbytes):
    """Process-wide limit (bytes) on model weights + session KV caches; 0 removes it. A load or
    session that would exceed it raises OutOfMemoryError before allocating."""
    errors_check(_lib.lib.gemma4_set_memory_budget(int(nbytes)))


from .errors import check as errors_check  # noqa: E402

__all__ = [
    "DEFAULT_MAX_TOKENS",
    "Model", "Session", "ModelInfo", "SessionInfo", "Gemma4Error", "InvalidArgumentError",
    "IoError", "FormatError", "UnsupportedError", "OutOfMemoryError", "DeviceError",
    "ContextFullError", "BufferTooSmallError", "InternalError", "InvalidTokenError",
    "CancelledError", "ConfigError", "NoTokenizerError", "BusyError", "library_version", "library_path",
    "status_name", "set_log_callback", "set_memory_budget", "ABI_VERSION", "PRECISION_FP32",
    "PRECISION_BF16",
]
