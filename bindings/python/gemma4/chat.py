# chat.py: OpenAI / llama-cpp-python shaped chat completions over gemma4_chat_complete.
#
# Session.create_chat_completion and Model.create_chat_completion call create_chat_completion
# here. The library renders the conversation (tools, thinking, tool results) and parses the reply
# into text, reasoning and tool calls; this module only converts between JSON and the dict
# shapes llama-cpp-python returns:
#   {"id": "chatcmpl-...", "object": "chat.completion", "created": 1700000000, "model": "...",
#    "choices": [{"index": 0, "message": {"role": "assistant", "content": "..." or None,
#                 "reasoning_content": "..." (only with thinking),
#                 "tool_calls": [{"id": "call_0", "type": "function",
#                                 "function": {"name": "f", "arguments": "{...JSON...}"}}]},
#                 "logprobs": None, "finish_reason": "stop" | "length" | "tool_calls"}],
#    "usage": {"prompt_tokens", "completion_tokens", "total_tokens",
#              "prompt_tokens_details": {"cached_tokens"}}}
# and with stream=True "chat.completion.chunk" dicts whose choices carry a "delta": first
# {"role": "assistant"}, then {"content": piece} / {"reasoning_content": piece} /
# {"tool_calls": [{"index", "id", "type", "function": {"name", "arguments"}}]}, and a last chunk
# with an empty delta and the finish_reason.
import ctypes
import json
import queue
import threading
import time
import uuid

from . import _lib
from .errors import check, make_error

_C = _lib.lib

# Longest reply when the caller gives no max_tokens: 256 tokens, the same in every gemma4 front
# end (gemma4-chat -n, C# Gemma4ChatOptions.MaxTokens, Elixir max_tokens:). None: no limit
# (until the end of the turn, a stop string or a full context).
DEFAULT_MAX_TOKENS = 256
_KINDS = {_lib.CHAT_EVENT_TEXT: "content", _lib.CHAT_EVENT_REASONING: "reasoning_content",
          _lib.CHAT_EVENT_TOOL_CALL: "tool_call"}


def _json_arg(value, what):
    if value is None:
        return None
    if isinstance(value, (str, bytes)):
        data = value if isinstance(value, bytes) else value.encode("utf-8")
        if b"\0" in data:  # a NUL-terminated C parameter would end there
            raise make_error(_lib.ERR_INVALID_ARGUMENT, "%s contains a NUL character at byte %d"
                             % (what, data.find(b"\0")))
        return data
    try:
        return json.dumps(value, ensure_ascii=False).encode("utf-8")
    except (TypeError, ValueError) as e:
        raise make_error(_lib.ERR_INVALID_ARGUMENT, "%s is not JSON-serializable: %s" % (what, e))


def _openai_call(call, index=None):
    """A library tool call {"id", "name", "arguments": {...}} in OpenAI's shape (arguments as a
    JSON string, as llama-cpp-python and the OpenAI client give them)."""
    out = {"id": call["id"], "type": "function",
           "function": {"name": call["name"],
                        "arguments": json.dumps(call["arguments"], ensure_ascii=False)}}
    if index is not None:
        out = {"index": index, **out}
    return out


def _events(session, messages, tools, flags, max_tokens):
    """Generator of (kind, value) for one completion, then ("result", dict). Runs the C call on a
    worker thread (as Session._stream); closing the generator cancels it."""
    h = session._h()
    q = queue.SimpleQueue()
    stop = threading.Event()
    done = object()

    def on_event(kind, text, length, user):
        try:
            q.put((kind, ctypes.string_at(text, length)))
            return 1 if stop.is_set() else 0
        except BaseException:  # never let an exception cross the C frame
            return 1

    fn = _lib.CHAT_EVENT_FN(on_event)
    finished = threading.Event()

    def work():
        try:
            st = _C.gemma4_chat_complete(h, messages, tools, flags, max_tokens, fn, None)
            q.put((done, st, _C.gemma4_last_error().decode("utf-8", "replace") if st else ""))
        finally:
            finished.set()

    session._busy = True
    worker = threading.Thread(target=work, name="gemma4-chat", daemon=True)
    worker._gemma4_finished = finished
    session._worker = worker
    try:
        worker.start()
        while True:
            try:
                item = q.get(timeout=0.05)
            except queue.Empty:
                continue
            if item[0] is done:
                _, st, msg = item
                if st != _lib.OK and not (st == _lib.ERR_CANCELLED and stop.is_set()):
                    raise make_error(st, msg)
                break
            kind, data = item
            # events carry whole UTF-8 characters (the library holds partial ones back)
            text = data.decode("utf-8", "replace")
            if kind == _lib.CHAT_EVENT_TOOL_CALL:
                yield "tool_call", json.loads(text)
            else:
                yield _KINDS[kind], text
    finally:
        stop.set()
        session._finish(worker, finished)
        del fn
    buf, n = session._read_result()
    yield "result", json.loads(buf)


def create_chat_completion(session, messages, tools=None, tool_choice=None, stream=False,
                           temperature=None, top_p=None, top_k=None, min_p=None,
                           max_tokens=DEFAULT_MAX_TOKENS, stop=None, seed=None, repeat_penalty=None,
                           enable_thinking=False, preserve_thinking=False, model=None):
    if tool_choice not in (None, "auto", "none"):
        # "required" or a named function would need constrained decoding, which gemma4 lacks.
        raise make_error(_lib.ERR_UNSUPPORTED,
                         "tool_choice %r is not supported (use None, 'auto' or 'none')"
                         % (tool_choice,))
    if tool_choice == "none":
        tools = None
    msgs = _json_arg(list(messages), "messages")
    tools_js = _json_arg(list(tools), "tools") if tools else None
    flags = ((_lib.CHAT_THINKING if enable_thinking else 0) |
             (_lib.CHAT_PRESERVE_THINKING if preserve_thinking else 0))
    session._configure_request(temperature, top_p, top_k, min_p, repeat_penalty, seed,
                               [stop] if isinstance(stop, str) else stop)
    max_n = session._max(max_tokens)
    cid = "chatcmpl-" + uuid.uuid4().hex
    created = int(time.time())
    name = model or session.model.path
    if stream:
        return _chunks(session, msgs, tools_js, flags, max_n, cid, created, name)
    content, reasoning, calls, result = [], [], [], None
    events = _events(session, msgs, tools_js, flags, max_n)
    try:
        for kind, value in events:
            if kind == "content":
                content.append(value)
            elif kind == "reasoning_content":
                reasoning.append(value)
            elif kind == "tool_call":
                calls.append(value)
            else:
                result = value
    finally:
        events.close()
    message = {"role": "assistant", "content": "".join(content) if content or not calls else None}
    if reasoning:
        message["reasoning_content"] = "".join(reasoning)
    if calls:
        message["tool_calls"] = [_openai_call(c) for c in calls]
    return {"id": cid, "object": "chat.completion", "created": created, "model": name,
            "choices": [{"index": 0, "message": message, "logprobs": None,
                         "finish_reason": result["finish_reason"]}],
            "usage": _usage(result)}


def _usage(result):
    u = result["usage"]
    return {"prompt_tokens": u["prompt_tokens"], "completion_tokens": u["completion_tokens"],
            "total_tokens": u["total_tokens"],
            "prompt_tokens_details": {"cached_tokens": u["cached_tokens"]}}


def _chunks(session, msgs, tools, flags, max_n, cid, created, name):
    def chunk(delta, finish=None):
        return {"id": cid, "object": "chat.completion.chunk", "created": created, "model": name,
                "choices": [{"index": 0, "delta": delta, "logprobs": None,
                             "finish_reason": finish}]}

    yield chunk({"role": "assistant"})
    n_calls = 0
    events = _events(session, msgs, tools, flags, max_n)
    try:
        for kind, value in events:
            if kind == "result":
                last = chunk({}, value["finish_reason"])
                last["usage"] = _usage(value)
                yield last
            elif kind == "tool_call":
                yield chunk({"tool_calls": [_openai_call(value, n_calls)]})
                n_calls += 1
            else:
                yield chunk({kind: value})
    finally:
        events.close()
