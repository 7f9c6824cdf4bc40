# _lib.py: finds libgemma4.so and declares every function of abi/gemma4.h for ctypes.
#
# This file mirrors the C header one to one (same names, same argument order) and adds nothing
# else; the Pythonic layer lives in model.py. Lookup order for the shared library:
#   1. $GEMMA4_LIBRARY: a path to the .so, or a directory that contains libgemma4.so
#   2. the package directory (`pip install ./bindings/python` builds and bundles it there)
#   3. when the package is imported from a checkout (bindings/python/gemma4): the repository's
#      build/ (what scripts/build.sh and scripts/run.sh make)
#   4. the system search path (ldconfig / LD_LIBRARY_PATH), via ctypes.util.find_library
# When none loads, the OSError lists every place tried and why it failed.
import ctypes
import ctypes.util
import os

# The ABI major version this binding was written for (GEMMA4_ABI_VERSION in gemma4.h).
ABI_VERSION = 0

# ---- constants (same names and values as gemma4.h) --------------------------------------------
OK = 0
ERR_INVALID_ARGUMENT = 1
ERR_IO = 2
ERR_FORMAT = 3
ERR_UNSUPPORTED = 4
ERR_OUT_OF_MEMORY = 5
ERR_DEVICE = 6
ERR_CONTEXT_FULL = 7
ERR_BUFFER_TOO_SMALL = 8
ERR_INTERNAL = 9
ERR_INVALID_TOKEN = 10
ERR_CANCELLED = 11
ERR_CONFIG = 12
ERR_NO_TOKENIZER = 13
ERR_BUSY = 14

LOAD_IN_MEMORY = 1

LOG_ERROR, LOG_WARN, LOG_INFO, LOG_DEBUG = 0, 1, 2, 3

DEVICE_CPU = 0
DEVICE_CUDA = 1

INFO_VOCAB_SIZE = 0
INFO_CONTEXT_LENGTH = 1
INFO_N_LAYERS = 2
INFO_BOS_ID = 3
INFO_EOS_ID = 4
INFO_WEIGHT_BYTES = 5
INFO_HIDDEN_SIZE = 6
INFO_N_CTX = 7
INFO_END_OF_TURN_ID = 8
INFO_DEVICE = 9

TOKENIZE_ADD_BOS = 1
DETOKENIZE_SKIP_SPECIAL = 1

SESSION_N_PAST = 0
SESSION_N_CTX = 1
SESSION_KV_BYTES = 2
SESSION_N_EVALUATED = 3
SESSION_LAST_PROMPT_TOKENS = 4
SESSION_LAST_GEN_TOKENS = 5
SESSION_LAST_PROMPT_US = 6
SESSION_LAST_GEN_US = 7
SESSION_PRECISION = 8
SESSION_FINISH_REASON = 16
SESSION_USAGE_PROMPT_TOKENS = 17
SESSION_USAGE_CACHED_TOKENS = 18
SESSION_USAGE_COMPLETION_TOKENS = 19

CHAT_ADD_GENERATION_PROMPT = 1
CHAT_THINKING = 4
CHAT_PRESERVE_THINKING = 8
CHAT_EVENT_TEXT = 0
CHAT_EVENT_REASONING = 1
CHAT_EVENT_TOOL_CALL = 2
FINISH_REASONS = {0: "stop", 1: "length", 2: "tool_calls", 3: "cancelled"}

PRECISION_FP32 = 0
PRECISION_BF16 = 1

# ---- types ------------------------------------------------------------------------------------
c_status = ctypes.c_int32
c_model_p = ctypes.c_void_p  # gemma4_model *   (opaque)
c_session_p = ctypes.c_void_p  # gemma4_session * (opaque)
c_size_p = ctypes.POINTER(ctypes.c_size_t)
c_int32_p = ctypes.POINTER(ctypes.c_int32)
c_int64_p = ctypes.POINTER(ctypes.c_int64)
c_float_p = ctypes.POINTER(ctypes.c_float)
c_str_array = ctypes.POINTER(ctypes.c_char_p)  # const char *const *

# typedef void (*gemma4_log_fn)(int32_t level, const char *message, void *user_data);
LOG_FN = ctypes.CFUNCTYPE(None, ctypes.c_int32, ctypes.c_char_p, ctypes.c_void_p)
# typedef int32_t (*gemma4_token_fn)(const char *piece, size_t len, int32_t token, void *user);
# piece is not NUL-terminated, so it is declared as a raw pointer and read with string_at.
TOKEN_FN = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_void_p, ctypes.c_size_t, ctypes.c_int32,
                            ctypes.c_void_p)
# typedef int32_t (*gemma4_chat_event_fn)(int32_t kind, const char *text, size_t len, void *user);
CHAT_EVENT_FN = ctypes.CFUNCTYPE(ctypes.c_int32, ctypes.c_int32, ctypes.c_void_p, ctypes.c_size_t,
                                 ctypes.c_void_p)

# name: (restype, [argtypes]) for every function of gemma4.h, in header order.
SIGNATURES = {
    "gemma4_version": (ctypes.c_char_p, []),
    "gemma4_abi_version": (ctypes.c_int32, []),
    "gemma4_last_error": (ctypes.c_char_p, []),
    "gemma4_status_name": (ctypes.c_char_p, [c_status]),
    "gemma4_set_log_callback": (c_status, [LOG_FN, ctypes.c_void_p]),
    "gemma4_set_memory_budget": (c_status, [ctypes.c_uint64]),
    "gemma4_load": (c_status, [ctypes.c_char_p, ctypes.c_int32, ctypes.c_int32, ctypes.c_int64,
                               ctypes.c_int32, ctypes.POINTER(c_model_p)]),
    "gemma4_load_ex": (c_status, [ctypes.c_char_p, ctypes.c_int32, ctypes.c_int32, ctypes.c_int64,
                                  ctypes.c_int32, ctypes.c_uint32, ctypes.POINTER(c_model_p)]),
    "gemma4_model_free": (None, [c_model_p]),
    "gemma4_model_info": (c_status, [c_model_p, ctypes.c_int32, c_int64_p]),
    "gemma4_model_variant": (c_status, [c_model_p, ctypes.c_char_p, ctypes.c_size_t, c_size_p]),
    "gemma4_tokenize": (c_status, [c_model_p, ctypes.c_char_p, ctypes.c_size_t, ctypes.c_int32,
                                   c_int32_p, ctypes.c_size_t, c_size_p]),
    "gemma4_detokenize": (c_status, [c_model_p, c_int32_p, ctypes.c_size_t, ctypes.c_int32,
                                     ctypes.c_char_p, ctypes.c_size_t, c_size_p]),
    "gemma4_token_piece": (c_status, [c_model_p, ctypes.c_int32, ctypes.c_char_p,
                                      ctypes.c_size_t, c_size_p]),
    "gemma4_chat_apply": (c_status, [c_model_p, c_str_array, c_str_array, ctypes.c_size_t,
                                     ctypes.c_int32, ctypes.c_char_p, ctypes.c_size_t, c_size_p]),
    "gemma4_session_new": (c_status, [c_model_p, ctypes.c_int64, ctypes.POINTER(c_session_p)]),
    "gemma4_session_free": (None, [c_session_p]),
    "gemma4_session_step": (c_status, [c_session_p, c_int32_p, ctypes.c_size_t, c_float_p,
                                       ctypes.c_size_t, c_size_p]),
    "gemma4_kv_reset": (c_status, [c_session_p]),
    "gemma4_session_truncate": (c_status, [c_session_p, ctypes.c_int64]),
    "gemma4_session_info": (c_status, [c_session_p, ctypes.c_int32, c_int64_p]),
    "gemma4_session_set_precision": (c_status, [c_session_p, ctypes.c_int32]),
    "gemma4_session_set_greedy": (c_status, [c_session_p]),
    "gemma4_session_set_sampling": (c_status, [c_session_p, ctypes.c_float, ctypes.c_int32,
                                               ctypes.c_float, ctypes.c_float]),
    "gemma4_session_set_repetition_penalty": (c_status, [c_session_p, ctypes.c_float,
                                                         ctypes.c_int32]),
    "gemma4_session_set_seed": (c_status, [c_session_p, ctypes.c_uint64]),
    "gemma4_session_sample": (c_status, [c_session_p, c_int32_p]),
    "gemma4_session_add_stop": (c_status, [c_session_p, ctypes.c_char_p]),
    "gemma4_session_clear_stops": (c_status, [c_session_p]),
    "gemma4_generate": (c_status, [c_session_p, ctypes.c_char_p, ctypes.c_int32, TOKEN_FN,
                                   ctypes.c_void_p]),
    "gemma4_chat_generate": (c_status, [c_session_p, c_str_array, c_str_array, ctypes.c_size_t,
                                        ctypes.c_int32, TOKEN_FN, ctypes.c_void_p]),
    "gemma4_session_cancel": (c_status, [c_session_p]),
    "gemma4_session_clear_cancel": (c_status, [c_session_p]),
    "gemma4_chat_render_json": (c_status, [c_model_p, ctypes.c_char_p, ctypes.c_char_p,
                                           ctypes.c_int32, ctypes.c_char_p, ctypes.c_size_t,
                                           c_size_p]),
    "gemma4_chat_tokenize_json": (c_status, [c_model_p, ctypes.c_char_p, ctypes.c_char_p,
                                             ctypes.c_int32, c_int32_p, ctypes.c_size_t,
                                             c_size_p]),
    "gemma4_chat_complete": (c_status, [c_session_p, ctypes.c_char_p, ctypes.c_char_p,
                                        ctypes.c_int32, ctypes.c_int32, CHAT_EVENT_FN,
                                        ctypes.c_void_p]),
    "gemma4_chat_result": (c_status, [c_session_p, ctypes.c_char_p, ctypes.c_size_t, c_size_p]),
    "gemma4_session_reset_sampling": (c_status, [c_session_p]),
    "gemma4_session_get_sampling": (c_status, [c_session_p, c_float_p, c_int32_p, c_float_p,
                                               c_float_p]),
    "gemma4_session_force_tokens": (c_status, [c_session_p, c_int32_p, ctypes.c_size_t]),
}


def _candidates():
    env = os.environ.get("GEMMA4_LIBRARY")
    if env:
        if os.path.isdir(env):
            for name in ("libgemma4.so", "libgemma4.so.%d" % ABI_VERSION, "libgemma4.dylib"):
                path = os.path.join(env, name)
                if os.path.exists(path):
                    yield path
            return  # an explicit directory without the library is an error, not a fallback
        yield env
        return
    here = os.path.dirname(os.path.abspath(__file__))
    checkout_build = os.path.join(here, "..", "..", "..", "build")
    for d in (here, os.path.normpath(checkout_build)):
        for name in ("libgemma4.so", "libgemma4.so.%d" % ABI_VERSION, "libgemma4.dylib"):
            path = os.path.join(d, name)
            if os.path.exists(path):
                yield path
                break
        else:
            yield _Missing(os.path.join(d, "libgemma4.so"))
    found = ctypes.util.find_library("gemma4")
    if found:
        yield found
    yield "libgemma4.so.%d" % ABI_VERSION
    yield "libgemma4.so"


class _Missing(str):
    """A place looked at that holds no library (reported in the error, never loaded)."""


def load_library():
    """Returns the loaded CDLL with every signature declared; raises OSError if none is found."""
    errors = []
    for path in _candidates():
        if isinstance(path, _Missing):
            errors.append("%s: no such file" % path)
            continue
        try:
            lib = ctypes.CDLL(path)
        except OSError as e:
            errors.append("%s: %s" % (path, e))
            continue
        for name, (restype, argtypes) in SIGNATURES.items():
            fn = getattr(lib, name)  # AttributeError here means a mismatched library
            fn.restype = restype
            fn.argtypes = argtypes
        abi = lib.gemma4_abi_version()
        if abi != ABI_VERSION:
            raise OSError("%s has ABI version %d, this binding needs %d" % (path, abi, ABI_VERSION))
        lib._gemma4_path = path
        return lib
    hint = ("pip install ./bindings/python builds and bundles it; or build the repository "
            "(bash scripts/build.sh); or set GEMMA4_LIBRARY to libgemma4.so or its directory")
    raise OSError("libgemma4 not found (%s); tried: %s" % (hint, "; ".join(errors) or "nothing"))


lib = load_library()
