# model.py: the Pythonic layer over the ctypes declarations of _lib.py: Model and Session.
#
# Ownership: each Python object owns exactly one C handle and frees it once, in close()
# (also called by __exit__ and __del__), guarded by a closed flag. A Session keeps its model
# alive at the C level, so closing a Model while its sessions are open is fine.
# Threads: ctypes releases the GIL for every C call. Streaming generation runs the C call on a
# worker thread and hands pieces to the consuming thread through a queue, so the consumer pulls
# lazily and a KeyboardInterrupt (or closing the generator) cancels the C call and joins the
# worker before the exception propagates; the session stays usable afterwards.
import ctypes
import codecs
import operator
import queue
import threading
from dataclasses import dataclass

from . import _lib
from . import chat as _chat
from .errors import CancelledError, Gemma4Error, InvalidArgumentError, check, make_error

try:
    import numpy as _np
except ImportError:  # numpy is optional: logits come back as lists then
    _np = None

_C = _lib.lib
_INT32_MIN, _INT32_MAX = -(2 ** 31), 2 ** 31 - 1
_DEVICES = {"cpu": _lib.DEVICE_CPU, "cuda": _lib.DEVICE_CUDA}
_PRECISIONS = {"fp32": _lib.PRECISION_FP32, "bf16": _lib.PRECISION_BF16}
_PRECISION_NAMES = {v: k for k, v in _PRECISIONS.items()}
_POLL_S = 0.05  # how often a waiting main thread wakes up to notice KeyboardInterrupt


def _utf8(text):
    if isinstance(text, bytes):
        return text
    if not isinstance(text, str):
        raise TypeError("expected str, got %s" % type(text).__name__)
    return text.encode("utf-8")


def _cstr(text, what):
    """_utf8 for a NUL-terminated C parameter: the C side would stop at an embedded NUL and
    silently drop the rest, so a NUL is refused (InvalidArgumentError, a ValueError)."""
    data = _utf8(text)
    at = data.find(b"\0")
    if at >= 0:
        raise make_error(_lib.ERR_INVALID_ARGUMENT,
                         "%s contains a NUL character at byte %d (the C API takes NUL-terminated "
                         "strings)" % (what, at))
    return data


def _read_buffer(call, make_buf, guess):
    """Runs call(buf, capacity, n_out_ptr) with the (buf, capacity, *n_out) convention: tries a
    buffer of `guess` elements, and on GEMMA4_ERR_BUFFER_TOO_SMALL retries with the size the
    library reported. Returns (buf, n)."""
    n = ctypes.c_size_t(0)
    cap = max(int(guess), 1)
    for _ in range(3):
        buf = make_buf(cap)
        st = call(buf, cap, ctypes.byref(n))
        if st == _lib.ERR_BUFFER_TOO_SMALL and n.value >= cap:
            cap = n.value + 1
            continue
        check(st)
        return buf, n.value
    raise make_error(_lib.ERR_INTERNAL, "buffer size kept changing")


def _token_array(tokens):
    """tokens (int, sequence of ints or numpy integer array) -> (ctypes pointer, count, keepalive)."""
    if isinstance(tokens, int):
        tokens = [tokens]
    if _np is not None and isinstance(tokens, _np.ndarray):
        if tokens.ndim != 1 or tokens.dtype.kind not in "iu":
            raise InvalidArgumentError(_lib.ERR_INVALID_ARGUMENT, "GEMMA4_ERR_INVALID_ARGUMENT",
                                       "tokens must be a 1-D integer array")
        if tokens.size and (tokens.min() < _INT32_MIN or tokens.max() > _INT32_MAX):
            raise make_error(_lib.ERR_INVALID_TOKEN, "token id outside int32")
        arr = _np.ascontiguousarray(tokens, dtype=_np.int32)
        return arr.ctypes.data_as(_lib.c_int32_p), arr.size, arr
    tokens = list(tokens)
    for t in tokens:
        if not isinstance(t, int) and not (_np is not None and isinstance(t, _np.integer)):
            raise TypeError("token ids must be integers, got %s" % type(t).__name__)
        if not _INT32_MIN <= t <= _INT32_MAX:
            raise make_error(_lib.ERR_INVALID_TOKEN, "token id %d outside int32" % t)
    arr = (ctypes.c_int32 * max(len(tokens), 1))(*tokens)
    return ctypes.cast(arr, _lib.c_int32_p), len(tokens), arr


def _precision_value(precision):
    """"fp32" / "bf16" or a PRECISION_* integer -> the C value. An unknown name raises here; an
    unknown integer goes to the library, whose message names it."""
    if isinstance(precision, str):
        if precision not in _PRECISIONS:
            raise make_error(_lib.ERR_INVALID_ARGUMENT,
                             "precision must be 'fp32' or 'bf16', got %r" % (precision,))
        return _PRECISIONS[precision]
    value = operator.index(precision)  # TypeError for floats, None, ...
    if not _INT32_MIN <= value <= _INT32_MAX:
        raise make_error(_lib.ERR_INVALID_ARGUMENT, "precision %d outside int32" % value)
    return value


def _messages_arrays(messages):
    """[{"role", "content"}] -> (roles char**, contents char**, n, keepalive)."""
    messages = list(messages)
    if not messages:
        raise make_error(_lib.ERR_INVALID_ARGUMENT, "messages is empty")
    roles, contents = [], []
    for i, m in enumerate(messages):
        try:
            role, content = _utf8(m["role"]), _utf8(m["content"])
        except (KeyError, TypeError) as e:
            raise make_error(_lib.ERR_INVALID_ARGUMENT,
                             "messages[%d] needs str 'role' and 'content' (%s)" % (i, e)) from None
        roles.append(_cstr(role, "messages[%d]['role']" % i))
        contents.append(_cstr(content, "messages[%d]['content']" % i))
    r = (ctypes.c_char_p * len(roles))(*roles)
    c = (ctypes.c_char_p * len(contents))(*contents)
    return r, c, len(messages), (roles, contents)


@dataclass(frozen=True)
class ModelInfo:
    vocab_size: int
    context_length: int
    n_layers: int
    bos_id: int
    eos_id: int
    weight_bytes: int
    hidden_size: int
    n_ctx: int
    end_of_turn_id: int
    device: str
    variant: str


@dataclass(frozen=True)
class SessionInfo:
    n_past: int
    n_ctx: int
    kv_bytes: int
    n_evaluated: int
    last_prompt_tokens: int
    last_gen_tokens: int
    last_prompt_us: int
    last_gen_us: int
    precision: str  # "fp32" or "bf16"


class _Handle:
    """Context-manager and finalizer behaviour shared by Model and Session: close() is theirs."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def __del__(self):
        try:
            self.close()
        except Exception:
            pass  # interpreter shutdown: ctypes may already be gone

    @property
    def closed(self):
        return self._closed


class Model(_Handle):
    """A loaded Gemma 4 checkpoint. Immutable and thread-safe; use as a context manager."""

    def __init__(self, handle, path):
        self._handle = handle  # c_void_p, owned
        self._closed = False
        self._chat_session = None
        self.path = path
        self.vocab_size = self._info(_lib.INFO_VOCAB_SIZE)

    @classmethod
    def load(cls, path, device="cpu", device_index=0, n_ctx=0, n_threads=0, in_memory=False):
        """Loads a Hugging Face Gemma 4 directory. device: "cpu" or "cuda". n_ctx: default
        context of new sessions (0: min(8192, model maximum)). n_threads: 0 = all cores.
        The weight files are memory-mapped and must not be truncated or rewritten while loaded
        (the process would die with SIGBUS); in_memory=True reads them into memory instead."""
        if device not in _DEVICES:
            raise make_error(_lib.ERR_INVALID_ARGUMENT,
                             "device must be 'cpu' or 'cuda', got %r" % (device,))
        handle = _lib.c_model_p()
        flags = _lib.LOAD_IN_MEMORY if in_memory else 0
        st = _C.gemma4_load_ex(_cstr(str(path), "path"), _DEVICES[device], int(device_index), int(n_ctx),
                               int(n_threads), flags, ctypes.byref(handle))
        check(st)
        return cls(handle, str(path))

    # -- lifetime --
    def close(self):
        """Drops this object's model reference (sessions keep the weights alive). Idempotent."""
        if getattr(self, "_closed", True):
            return
        self._closed = True
        if self._chat_session is not None:
            self._chat_session.close()
            self._chat_session = None
        _C.gemma4_model_free(self._handle)
        self._handle = None


    def _h(self):
        if self._closed:
            raise make_error(_lib.ERR_INVALID_ARGUMENT, "model is closed")
        return self._handle

    # -- properties --
    def _info(self, key):
        v = ctypes.c_int64()
        check(_C.gemma4_model_info(self._h(), key, ctypes.byref(v)))
        return v.value

    @property
    def variant(self):
        buf, n = _read_buffer(lambda b, cap, n: _C.gemma4_model_variant(self._h(), b, cap, n),
                              ctypes.create_string_buffer, 32)
        return buf.raw[:n].decode("utf-8")

    @property
    def info(self):
        k = _lib
        return ModelInfo(
            vocab_size=self._info(k.INFO_VOCAB_SIZE),
            context_length=self._info(k.INFO_CONTEXT_LENGTH),
            n_layers=self._info(k.INFO_N_LAYERS),
            bos_id=self._info(k.INFO_BOS_ID),
            eos_id=self._info(k.INFO_EOS_ID),
            weight_bytes=self._info(k.INFO_WEIGHT_BYTES),
            hidden_size=self._info(k.INFO_HIDDEN_SIZE),
            n_ctx=self._info(k.INFO_N_CTX),
            end_of_turn_id=self._info(k.INFO_END_OF_TURN_ID),
            device="cuda" if self._info(k.INFO_DEVICE) == k.DEVICE_CUDA else "cpu",
            variant=self.variant,
        )

    # -- text --
    def tokenize(self, text, add_bos=False):
        """UTF-8 text -> list of token ids, exactly as the Hugging Face tokenizer."""
        data = _utf8(text)
        flags = _lib.TOKENIZE_ADD_BOS if add_bos else 0
        # every token covers at least one byte, plus <bos>: len + 2 is always enough
        buf, n = _read_buffer(
            lambda b, cap, n: _C.gemma4_tokenize(self._h(), data, len(data), flags, b, cap, n),
            lambda cap: (ctypes.c_int32 * cap)(), len(data) + 2)
        return list(buf[:n])

    def detokenize(self, ids, skip_special=False):
        """Token ids -> str, exactly as Hugging Face decode()."""
        ptr, count, keep = _token_array(ids)
        flags = _lib.DETOKENIZE_SKIP_SPECIAL if skip_special else 0
        buf, n = _read_buffer(
            lambda b, cap, n: _C.gemma4_detokenize(self._h(), ptr, count, flags, b, cap, n),
            ctypes.create_string_buffer, 16 * count + 16)
        return buf.raw[:n].decode("utf-8", "replace")

    def token_piece(self, token):
        """The bytes one token adds to a text stream (may be a partial UTF-8 sequence)."""
        buf, n = _read_buffer(
            lambda b, cap, n: _C.gemma4_token_piece(self._h(), int(token), b, cap, n),
            ctypes.create_string_buffer, 64)
        return buf.raw[:n]

    def apply_chat_template(self, messages, add_generation_prompt=True):
        """Renders [{"role", "content"}] in Gemma 4's chat format (starts with "<bos>")."""
        r, c, count, keep = _messages_arrays(messages)
        buf, n = _read_buffer(
            lambda b, cap, n: _C.gemma4_chat_apply(self._h(), r, c, count,
                                                   1 if add_generation_prompt else 0, b, cap, n),
            ctypes.create_string_buffer, 256 + sum(len(x) + 32 for x in keep[1]))
        return buf.raw[:n].decode("utf-8")

    # -- sessions --
    def session(self, n_ctx=0, precision=None):
        """A new Session (its own KV cache of n_ctx positions; 0: the model's n_ctx).
        precision: None (the library default, "fp32"), "fp32" or "bf16"; see
        Session.set_precision."""
        value = None if precision is None else _precision_value(precision)
        handle = _lib.c_session_p()
        check(_C.gemma4_session_new(self._h(), int(n_ctx), ctypes.byref(handle)))
        session = Session(handle, self)
        if value is not None:
            try:
                session.set_precision(value)
            except BaseException:
                session.close()
                raise
        return session

    def _own_session(self):
        if self._chat_session is None or self._chat_session.closed:
            self._h()
            self._chat_session = self.session()
        return self._chat_session

    def chat(self, messages, stream=True, **kwargs):
        """Chat on the model's own session, reusing its cache across turns (pass the whole
        conversation each time). Arguments as Session.chat."""
        return self._own_session().chat(messages, stream=stream, **kwargs)

    def create_chat_completion(self, messages, **kwargs):
        """OpenAI-shaped chat completion on the model's own session (cache reused across
        turns), as llama_cpp.Llama.create_chat_completion. See Session.create_chat_completion."""
        return self._own_session().create_chat_completion(messages, **kwargs)

    def render_chat(self, messages, tools=None, add_generation_prompt=True, enable_thinking=False,
                    preserve_thinking=False):
        """The prompt text transformers' apply_chat_template(messages, tools=...,
        enable_thinking=...) renders for this model (OpenAI message dicts, tools as dicts)."""
        msgs, tools_js, flags = self._chat_args(messages, tools, add_generation_prompt,
                                                enable_thinking, preserve_thinking)
        buf, n = _read_buffer(
            lambda b, cap, n: _C.gemma4_chat_render_json(self._h(), msgs, tools_js, flags, b,
                                                         cap, n),
            ctypes.create_string_buffer, 1024 + 2 * len(msgs) + 2 * len(tools_js or b""))
        return buf.raw[:n].decode("utf-8")

    def tokenize_chat(self, messages, tools=None, add_generation_prompt=True,
                      enable_thinking=False, preserve_thinking=False):
        """The token ids a chat completion runs for messages: contents are literal text, so
        special-token strings in them cannot forge turns."""
        msgs, tools_js, flags = self._chat_args(messages, tools, add_generation_prompt,
                                                enable_thinking, preserve_thinking)
        buf, n = _read_buffer(
            lambda b, cap, n: _C.gemma4_chat_tokenize_json(
                self._h(), msgs, tools_js, flags, ctypes.cast(b, _lib.c_int32_p), cap, n),
            lambda cap: (ctypes.c_int32 * cap)(), 512 + len(msgs))
        return list(buf[:n])

    @staticmethod
    def _chat_args(messages, tools, add_generation_prompt, enable_thinking, preserve_thinking):
        flags = ((_lib.CHAT_ADD_GENERATION_PROMPT if add_generation_prompt else 0) |
                 (_lib.CHAT_THINKING if enable_thinking else 0) |
                 (_lib.CHAT_PRESERVE_THINKING if preserve_thinking else 0))
        return (_chat._json_arg(list(messages), "messages"),
                _chat._json_arg(list(tools), "tools") if tools else None, flags)


class Session(_Handle):
    """A conversation: KV cache, position, sampler, stop strings. One thread at a time."""

    def __init__(self, handle, model):
        self._handle = handle  # c_void_p, owned
        self._closed = False
        self._busy = False  # a generation is running on a worker thread
        self._worker = None
        self.model = model  # Python-side convenience; the C session holds its own reference
        self.vocab_size = model.vocab_size

    # -- lifetime --
    def close(self):
        """Cancels a running generation, then frees the session. Idempotent."""
        if getattr(self, "_closed", True):
            return
        worker = self._worker
        if worker is not None:  # a generation is running on a worker thread
            self._finish(worker, worker._gemma4_finished)
        self._closed = True
        _C.gemma4_session_free(self._handle)
        self._handle = None


    def _h(self):
        if self._closed:
            raise make_error(_lib.ERR_INVALID_ARGUMENT, "session is closed")
        if self._busy:
            raise make_error(_lib.ERR_INVALID_ARGUMENT,
                             "session is busy with a generation (finish or close the stream)")
        return self._handle

    def cancel(self):
        """Asks a running generate/step to stop (any thread)."""
        if not self._closed:
            check(_C.gemma4_session_cancel(self._handle))

    # -- state --
    def _info(self, key):
        v = ctypes.c_int64()
        check(_C.gemma4_session_info(self._h(), key, ctypes.byref(v)))
        return v.value

    @property
    def info(self):
        k = _lib
        return SessionInfo(*(self._info(key) for key in (
            k.SESSION_N_PAST, k.SESSION_N_CTX, k.SESSION_KV_BYTES, k.SESSION_N_EVALUATED,
            k.SESSION_LAST_PROMPT_TOKENS, k.SESSION_LAST_GEN_TOKENS, k.SESSION_LAST_PROMPT_US,
            k.SESSION_LAST_GEN_US)), precision=self.precision)

    @property
    def n_past(self):
        return self._info(_lib.SESSION_N_PAST)

    @property
    def n_ctx(self):
        return self._info(_lib.SESSION_N_CTX)

    @property
    def precision(self):
        """"fp32" (the default) or "bf16": how matrix products treat activations."""
        value = self._info(_lib.SESSION_PRECISION)
        return _PRECISION_NAMES.get(value, value)

    def reset(self):
        """Empties the KV cache; sampler settings and stop strings stay."""
        check(_C.gemma4_kv_reset(self._h()))

    def truncate(self, n_keep):
        """Rewinds the context to its first n_keep tokens."""
        check(_C.gemma4_session_truncate(self._h(), int(n_keep)))

    # -- low level: step and sample --
    def step(self, tokens, logits=True, out=None):
        """Runs tokens (int, list or int array) and returns the last position's logits: a new
        float32 numpy array (or `out`, filled in place), a list of floats without numpy, or
        None with logits=False. A Ctrl-C during a multi-token prefill cancels it."""
        ptr, count, keep = _token_array(tokens)
        vocab = self.vocab_size
        if not logits:
            buf, buf_ptr, cap = None, None, 0
        elif _np is not None:
            buf = out if out is not None else _np.empty(vocab, dtype=_np.float32)
            if buf.dtype != _np.float32 or not buf.flags.c_contiguous or buf.ndim != 1:
                raise make_error(_lib.ERR_INVALID_ARGUMENT, "out must be a 1-D float32 array")
            buf_ptr, cap = buf.ctypes.data_as(_lib.c_float_p), buf.size
        else:
            buf = (ctypes.c_float * vocab)()
            buf_ptr, cap = ctypes.cast(buf, _lib.c_float_p), vocab
        h = self._h()
        call = lambda: _C.gemma4_session_step(h, ptr, count, buf_ptr, cap, None)
        check(call() if count <= 1 else self._run_interruptible(call))
        if buf is None:
            return None
        return buf if _np is not None else list(buf)

    def sample(self):
        """Samples the next token from the last step's logits (does not append it)."""
        tok = ctypes.c_int32()
        check(_C.gemma4_session_sample(self._h(), ctypes.byref(tok)))
        return tok.value

    def set_greedy(self):
        check(_C.gemma4_session_set_greedy(self._h()))

    def set_sampling(self, temperature=1.0, top_k=0, top_p=1.0, min_p=0.0):
        check(_C.gemma4_session_set_sampling(self._h(), float(temperature), int(top_k),
                                             float(top_p), float(min_p)))

    def set_repetition_penalty(self, penalty=1.0, last_n=0):
        check(_C.gemma4_session_set_repetition_penalty(self._h(), float(penalty), int(last_n)))

    def set_seed(self, seed):
        check(_C.gemma4_session_set_seed(self._h(), int(seed) & 0xFFFFFFFFFFFFFFFF))

    def set_precision(self, precision):
        """"fp32" (the default; or gemma4.PRECISION_FP32) or "bf16" (gemma4.PRECISION_BF16).
        bf16 gives llama.cpp's numerics: activations rounded to bf16 in the products with bf16
        weights, quantized to 8 bits (Q8_0 / Q8_K) in those with GGUF block-quantized weights:
        faster prompts and decoding, logits ~1e-2 relative from fp32 (a few percent on quantized
        weights; see gemma4_session_set_precision in gemma4.h). Takes effect from the next step;
        the KV cache is kept."""
        check(_C.gemma4_session_set_precision(self._h(), _precision_value(precision)))

    def set_stops(self, stops):
        check(_C.gemma4_session_clear_stops(self._h()))
        for s in stops or ():
            check(_C.gemma4_session_add_stop(self._h(), _cstr(s, "stop string")))

    def configure(self, temperature=0.0, top_k=0, top_p=1.0, min_p=0.0, repetition_penalty=1.0,
                  repetition_last_n=0, seed=None, stop=None):
        """Sets the whole sampler: temperature 0 is greedy. seed None keeps the RNG state."""
        if temperature is None or temperature == 0:
            self.set_greedy()
        else:
            self.set_sampling(temperature, top_k or 0, 1.0 if top_p is None else top_p,
                              min_p or 0.0)
        self.set_repetition_penalty(1.0 if repetition_penalty is None else repetition_penalty,
                                    repetition_last_n or 0)
        if seed is not None:
            self.set_seed(seed)
        self.set_stops(stop)

    # -- generation --
    def generate(self, prompt, max_tokens=_chat.DEFAULT_MAX_TOKENS, stream=True, **sampling):
        """Appends prompt to the context and generates. Sampling keywords (temperature, top_k,
        top_p, min_p, repetition_penalty, repetition_last_n, seed, stop) configure the sampler
        for this call (defaults: greedy, no stops). stream=True returns a generator of str
        pieces; stream=False returns the whole text. max_tokens: 256 by default (DEFAULT_MAX_TOKENS);
        None: until EOS, end of turn
        or a full context."""
        data = _cstr(prompt, "prompt")
        return self._start(lambda h, fn: _C.gemma4_generate(h, data, self._max(max_tokens), fn,
                                                            None), stream, sampling)

    def chat(self, messages, max_tokens=_chat.DEFAULT_MAX_TOKENS, stream=True, **sampling):
        """Generates the model's reply to messages ([{"role", "content"}], the whole
        conversation each turn; the unchanged prefix of the cache is reused). Keywords as
        generate."""
        r, c, count, keep = _messages_arrays(messages)
        return self._start(lambda h, fn: _C.gemma4_chat_generate(h, r, c, count,
                                                                 self._max(max_tokens), fn, None),
                           stream, sampling, keep)

    def create_chat_completion(self, messages, tools=None, tool_choice=None, stream=False,
                               temperature=None, top_p=None, top_k=None, min_p=None,
                               max_tokens=_chat.DEFAULT_MAX_TOKENS, stop=None, seed=None, repeat_penalty=None,
                               enable_thinking=False, preserve_thinking=False, model=None):
        """OpenAI-shaped chat completion with the same dict shapes llama-cpp-python returns
        (see gemma4/chat.py), so code written for llama_cpp ports by changing the import.
        messages: OpenAI message dicts, the whole conversation each turn (assistant tool_calls
        and "tool" messages included; the cached prefix is reused). tools: OpenAI tool dicts.
        tool_choice: None/"auto" or "none" ("required" raises UnsupportedError).
        Sampling left at None uses the model's generation_config.json defaults.
        enable_thinking: the model thinks first; the thought comes back as
        message["reasoning_content"] (stream: delta["reasoning_content"]), not as content.
        stream=True returns a generator of chat.completion.chunk dicts."""
        return _chat.create_chat_completion(
            self, messages, tools=tools, tool_choice=tool_choice, stream=stream,
            temperature=temperature, top_p=top_p, top_k=top_k, min_p=min_p,
            max_tokens=max_tokens, stop=stop, seed=seed, repeat_penalty=repeat_penalty,
            enable_thinking=enable_thinking, preserve_thinking=preserve_thinking, model=model)

    def _configure_request(self, temperature, top_p, top_k, min_p, repeat_penalty, seed, stops):
        """Per-request sampling: the model's defaults (generation_config.json), then the given
        values on top. temperature 0 is greedy."""
        h = self._h()
        check(_C.gemma4_session_reset_sampling(h))
        if any(v is not None for v in (temperature, top_p, top_k, min_p)):
            t, k, p, m = ctypes.c_float(), ctypes.c_int32(), ctypes.c_float(), ctypes.c_float()
            check(_C.gemma4_session_get_sampling(h, ctypes.byref(t), ctypes.byref(k),
                                                 ctypes.byref(p), ctypes.byref(m)))
            t = t.value if temperature is None else float(temperature)
            k = k.value if top_k is None else int(top_k)
            p = p.value if top_p is None else float(top_p)
            m = m.value if min_p is None else float(min_p)
            if t == 0:
                self.set_greedy()
            else:
                self.set_sampling(t, k, p, m)
        self.set_repetition_penalty(1.0 if repeat_penalty is None else repeat_penalty, 0)
        if seed is not None:
            self.set_seed(seed)
        self.set_stops(stops)

    def _read_result(self):
        buf, n = _read_buffer(
            lambda b, cap, n: _C.gemma4_chat_result(self._handle, b, cap, n),
            ctypes.create_string_buffer, 4096)
        return buf.raw[:n].decode("utf-8"), n

    def force_tokens(self, tokens):
        """Testing aid: the next generation takes these token ids instead of sampling."""
        ptr, count, keep = _token_array(tokens)
        check(_C.gemma4_session_force_tokens(self._h(), ptr, count))

    @property
    def finish_reason(self):
        """Of the last generation: "stop", "length", "tool_calls", "cancelled" or None."""
        return _lib.FINISH_REASONS.get(self._info(_lib.SESSION_FINISH_REASON))

    @staticmethod
    def _max(max_tokens):
        if max_tokens is None:
            return _INT32_MAX
        if max_tokens < 0:
            raise make_error(_lib.ERR_INVALID_ARGUMENT, "max_tokens %d < 0" % max_tokens)
        return min(int(max_tokens), _INT32_MAX)

    def _start(self, run, stream, sampling, keep=None):
        self.configure(**sampling)  # before the generator, so bad keywords raise right here
        gen = self._stream(run, keep)
        if stream:
            return gen
        try:
            return "".join(gen)
        finally:
            gen.close()

    def _stream(self, run, keep):
        """Generator: runs run(handle, token_fn) on a worker thread, yields its text pieces."""
        h = self._h()
        q = queue.SimpleQueue()
        stop = threading.Event()
        done = object()
        decoder = codecs.getincrementaldecoder("utf-8")("replace")

        def on_token(piece, length, token, user):
            try:
                if length:
                    q.put(ctypes.string_at(piece, length))
                return 1 if stop.is_set() else 0
            except BaseException:  # never let an exception cross the C frame
                return 1

        fn = _lib.TOKEN_FN(on_token)  # referenced until the worker has finished
        finished = threading.Event()

        def work():
            try:
                st = run(h, fn)
                # the message is per thread: read it here, on the thread that made the call
                q.put((done, st, _C.gemma4_last_error().decode("utf-8", "replace") if st else ""))
            finally:
                finished.set()

        self._busy = True
        worker = threading.Thread(target=work, name="gemma4-generate", daemon=True)
        worker._gemma4_finished = finished
        self._worker = worker
        try:
            worker.start()
            while True:
                try:
                    item = q.get(timeout=_POLL_S)
                except queue.Empty:
                    continue
                if isinstance(item, tuple) and item and item[0] is done:
                    _, st, msg = item
                    if st != _lib.OK and not (st == _lib.ERR_CANCELLED and stop.is_set()):
                        raise make_error(st, msg)
                    break
                text = decoder.decode(item)
                if text:
                    yield text
            tail = decoder.decode(b"", final=True)
            if tail:
                yield tail
        finally:
            # normal end, an exception (KeyboardInterrupt) or generator close(): stop the C
            # call at its next token boundary and wait for it, so the session is free again
            stop.set()
            self._finish(worker, finished)
            del fn, keep

    def _finish(self, worker, finished):
        """Cancels the worker's C call until it has returned, then joins it. Waits on an Event,
        not Thread.join: a KeyboardInterrupt inside join() can leave CPython (< 3.13) believing
        a running thread has stopped. A request the C call did not answer (it finished first)
        would stop the next call, so it is dropped once the call has returned. A Ctrl-C during
        the wait is re-raised after."""
        interrupted = sent = False
        while not finished.is_set():
            if not sent:
                _C.gemma4_session_cancel(self._handle)
                sent = True
            try:
                finished.wait(_POLL_S)
            except KeyboardInterrupt:
                interrupted = True
        worker.join()
        if sent:
            _C.gemma4_session_clear_cancel(self._handle)
        self._busy = False
        self._worker = None
        if interrupted:
            raise KeyboardInterrupt

    def _run_interruptible(self, call):
        """Runs call() (a C call on this session) on a worker thread; a KeyboardInterrupt while
        waiting cancels it, waits for it, and re-raises. Returns GEMMA4_OK or raises the
        error, with the message read on the worker thread."""
        result = {}
        finished = threading.Event()

        def work():
            try:
                st = call()
                result["st"] = st
                result["msg"] = _C.gemma4_last_error().decode("utf-8", "replace") if st else ""
            finally:
                finished.set()

        worker = threading.Thread(target=work, name="gemma4-step", daemon=True)
        worker._gemma4_finished = finished
        self._busy = True
        self._worker = worker
        try:
            worker.start()
            while not finished.wait(_POLL_S):
                pass
        finally:
            self._finish(worker, finished)
        if result["st"] != _lib.OK:
            raise make_error(result["st"], result["msg"])
        return _lib.OK
