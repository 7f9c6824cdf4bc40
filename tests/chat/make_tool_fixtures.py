#!/usr/bin/env python3
"""Renders conversations with tools, tool calls, tool responses and thinking through
transformers' apply_chat_template with both of Google's Gemma 4 chat templates and writes
tests/chat/expected_tools.jsonl for tests/test_chat.c.

Templates (both "Gemma 4 Canonical Chat Template", Published 2026-07-09):
  tests/chat/gemma4_chat_template.jinja      google/gemma-4-E2B-it (also E4B)
  tests/chat/gemma4_31b_chat_template.jinja  google/gemma-4-31B-it (also 26B-A4B): the same
      text plus, in the generation prompt with thinking off, the empty thought channel
      "<|channel>thought\\n<channel|>". Copied byte-for-byte from Ollama's checked-in copy of
      the upstream file:
      https://github.com/ollama/ollama/blob/8a0016f826305b0672daaf02c6c55a34f844bba3/
          model/renderers/testdata/gemma4_31b_chat_template.jinja2

Usage: /work/cache/venv-ref/bin/python tests/chat/make_tool_fixtures.py

Each line of expected_tools.jsonl is one JSON object:
  {"name", "template": "e2b"|"31b", "add_generation_prompt", "enable_thinking",
   "preserve_thinking", "messages", "tools" (or null), "expected" (the rendered text),
   "ids" (tokenizer_small ids of expected with special tokens parsed: the ids renderer must
   produce them, since no content here holds special-token text)}
"messages" are given as an OpenAI client sends them: tool-call arguments may be JSON strings
(the C side parses them); transformers gets them deserialized, as the template requires.
"""
import copy
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
TOKENIZER = os.path.join(ROOT, "tests", "golden", "tokenizer_small", "tokenizer.json")


def ensure(modules):
    missing = []
    for mod, pkg in modules:
        try:
            __import__(mod)
        except ImportError:
            missing.append(pkg)
    if missing:
        subprocess.check_call([sys.executable, "-m", "pip", "install", *missing])


ensure([("jinja2", "jinja2"), ("transformers", "transformers"), ("tokenizers", "tokenizers")])

from transformers import PreTrainedTokenizerFast  # noqa: E402

WEATHER = {"type": "function", "function": {
    "name": "get_weather", "description": "Current weather for a city.",
    "parameters": {"type": "object", "properties": {
        "city": {"type": "string", "description": "City name"},
        "unit": {"type": "string", "enum": ["celsius", "fahrenheit"], "description": "Unit"}},
        "required": ["city"]}}}
SEARCH = {"type": "function", "function": {
    "name": "search", "description": "Search the web.",
    "parameters": {"type": "object", "properties": {
        "query": {"type": "string"},
        "limit": {"type": "integer", "description": "Max results", "nullable": True},
        "tags": {"type": "array", "items": {"type": "string"}},
        "filters": {"type": "object", "description": "Filters", "properties": {
            "site": {"type": "string"}, "after": {"type": "string", "description": "ISO date"}},
            "required": ["site"]}},
        "required": ["query"]}}}
RICH = {"type": "function", "function": {
    "name": "book_flight", "description": "Book a flight.",
    "parameters": {"type": "object", "properties": {
        "passengers": {"type": "array", "description": "People", "items": {
            "type": "object", "properties": {"name": {"type": "string"},
                                             "age": {"type": "integer"}},
            "required": ["name"]}},
        "class": {"type": "string", "enum": ["economy", "business"]},
        "flexible": {"type": "boolean"},
        "budget": {"type": "number", "description": "EUR"},
        "seats": {"type": "array", "items": {"type": ["string", "null"], "maxItems": 4}},
        "meta": {"type": "object"},
        "Zeta": {"type": "string"}, "alpha": {"type": "string"}},
        "required": ["passengers", "class"]},
    "response": {"type": "object", "description": "Booking confirmation"}}}
NOPARAMS = {"type": "function", "function": {"name": "get_time", "description": "Time now."}}
EMPTYPARAMS = {"type": "function", "function": {
    "name": "ping", "description": "", "parameters": {"type": "object", "properties": {}}}}
BARE = {"type": "function", "function": {"name": "calc", "parameters": {
    "type": "object", "properties": {"expr": {"type": "string", "description": "Expression"}},
    "required": ["expr"]}, "response": {"description": "A number"}}}
NUMENUM = {"type": "function", "function": {"name": "set_level", "description": "Set level.",
    "parameters": {"type": "object", "properties": {
        "level": {"type": "string", "enum": ["1", "2.5", "high"]},
        "mode": {"type": "array", "items": {"enum": [1, 2.5, True, None, "x"],
                                             "type": "integer"}}}}}}


def U(t):
    return {"role": "user", "content": t}


def S(t):
    return {"role": "system", "content": t}


def A(t=None, calls=None, reasoning=None, **kw):
    m = {"role": "assistant", "content": t}
    if calls is not None:
        m["tool_calls"] = calls
    if reasoning is not None:
        m["reasoning_content"] = reasoning
    m.update(kw)
    return m


def call(name, args, id=None, as_string=False):
    c = {"type": "function", "function": {
        "name": name, "arguments": json.dumps(args) if as_string else args}}
    if id is not None:
        c["id"] = id
    return c


def T(content, id=None, name=None):
    m = {"role": "tool", "content": content}
    if id is not None:
        m["tool_call_id"] = id
    if name is not None:
        m["name"] = name
    return m


W = [WEATHER]
PARIS = {"city": "Paris", "unit": "celsius"}
CASES = [
    ("decl_one", W, [U("Weather in Paris?")], {}),
    ("decl_two_system", [WEATHER, SEARCH], [S("You are a helpful agent."), U("Hi")], {}),
    ("decl_rich", [RICH], [U("Book it")], {}),
    ("decl_noparams", [NOPARAMS, EMPTYPARAMS], [U("time?")], {}),
    ("decl_bare_response", [BARE], [U("2+2")], {}),
    ("decl_enum_numbers", [NUMENUM], [U("set")], {}),
    ("decl_no_user", W, [S("sys only")], {}),
    ("call_pending", W, [U("Weather?"), A(None, [call("get_weather", PARIS, "c1")])], {}),
    ("call_pending_nogen", W, [U("Weather?"), A(None, [call("get_weather", PARIS, "c1")])],
     {"add_generation_prompt": False}),
    ("call_response_string", W, [U("Weather?"), A(None, [call("get_weather", PARIS, "c1")]),
                                 T("Sunny, 21 C", "c1")], {}),
    ("call_response_then_answer", W, [U("Weather?"), A(None, [call("get_weather", PARIS, "c1")]),
                                      T("Sunny", "c1"), A("It is sunny in Paris."),
                                      U("Thanks!")], {}),
    ("call_args_json_string", W, [U("Weather?"),
                                  A(None, [call("get_weather", PARIS, "c1", as_string=True)]),
                                  T("{\"temp\": 21}", "c1")], {}),
    ("call_types", [SEARCH], [U("find"), A(None, [call("search", {
        "query": "gemma 4, \"tools\" {braces} [x]\nnewline", "limit": 5, "tags": ["a", "b"],
        "filters": {"site": "example.org", "after": None}, "score": 0.5, "tiny": 1e-05,
        "big": 1e20, "neg": -3, "flag": True, "off": False, "one": 1.0, "empty": "",
        "list": [1, 2.5, "x", None, {"k": "v"}], "Upper": "u", "lower": "l"})])], {}),
    ("call_unicode", W, [U("Wetter in Köln?"),
                         A(None, [call("get_weather", {"city": "Köln 🌧", "unit": "celsius"}, "c1")]),
                         T("Regen — 12 °C", "c1")], {}),
    ("calls_two", [WEATHER, SEARCH], [U("Paris and Rome"), A(None, [
        call("get_weather", {"city": "Paris"}, "a"), call("get_weather", {"city": "Rome"}, "b")]),
        T("Sunny", "a"), T("Rainy", "b")], {}),
    ("calls_two_reordered_ids", [WEATHER, SEARCH], [U("x"), A(None, [
        call("get_weather", {"city": "Paris"}, "a"), call("search", {"query": "q"}, "b")]),
        T("found", "b"), T("Sunny", "a")], {}),
    ("calls_no_ids", [WEATHER, SEARCH], [U("x"), A(None, [
        call("get_weather", {"city": "Paris"}), call("search", {"query": "q"})]),
        T("r1"), T("r2")], {}),
    ("call_tool_name_field", W, [U("x"), A(None, [call("get_weather", {"city": "P"}, "id1")]),
                                 T("r", "other", name="named_tool")], {}),
    # A tool message whose content is a JSON object makes the template raise (it iterates the
    # dict as parts); the C side renders it as the legacy tool_responses form (test_chat.c).
    ("legacy_response_object", W, [U("x"), A(None, [call("get_weather", {"city": "P"}, "c")],
                                             tool_responses=[{"name": "get_weather", "response": {
                                                 "temp": 21.5, "sky": "clear", "wind": [3, 4],
                                                 "ok": True}}])], {}),
    ("legacy_response_noname", W, [U("x"), A(None, [call("get_weather", {"city": "P"}, "c")],
                                             tool_responses=[{"response": "plain"}]),
                                   A("after")], {}),
    ("call_response_parts", W, [U("x"), A(None, [call("get_weather", {"city": "P"}, "c")]),
                                T([{"type": "text", "text": "part one, "},
                                   {"type": "text", "text": "part two"}], "c")], {}),
    ("call_response_number", W, [U("x"), A(None, [call("get_weather", {"city": "P"}, "c")]),
                                 T(42, "c")], {}),
    ("call_with_text", W, [U("x"), A("Let me check.", [call("get_weather", {"city": "P"}, "c")]),
                           T("Sunny", "c")], {}),
    ("call_null_args", [NOPARAMS], [U("time"), A(None, [call("get_time", None, "t")]),
                                    T("12:00", "t")], {}),
    ("call_empty_args", [NOPARAMS], [U("time"), A(None, [call("get_time", {}, "t")]),
                                     T("12:00", "t"), A("It is noon.")], {}),
    ("legacy_tool_responses", W, [U("x"), A(None, [call("get_weather", {"city": "P"})],
                                            tool_responses=[{"name": "get_weather",
                                                             "response": {"temp": 20}}])], {}),
    ("two_rounds", [WEATHER, SEARCH], [
        U("Plan"), A(None, [call("search", {"query": "q"}, "s1")]), T("res", "s1"),
        A(None, [call("get_weather", {"city": "Oslo"}, "w1")]), T("cold", "w1"),
        A("Done: cold in Oslo."), U("ok")], {}),
    ("answer_after_tool_continues", W, [
        U("x"), A(None, [call("get_weather", {"city": "P"}, "c")]), T("Sunny", "c"),
        A("Sunny.")], {"add_generation_prompt": False}),
    ("think_on_plain", None, [U("2+2?")], {"enable_thinking": True}),
    ("think_on_system", None, [S("Be exact."), U("2+2?")], {"enable_thinking": True}),
    ("think_on_tools", W, [U("Weather?")], {"enable_thinking": True}),
    ("think_history_stripped", None, [
        U("2+2?"), A("4", reasoning="add two and two"), U("and 3+3?")], {"enable_thinking": True}),
    ("think_history_in_content_stripped", None, [
        U("2+2?"), A("<|channel>thought\nadd<channel|>4"), U("3+3?")], {"enable_thinking": True}),
    ("think_after_last_user_kept", W, [
        U("Weather?"), A(None, [call("get_weather", PARIS, "c")], reasoning="need the tool"),
        T("Sunny", "c")], {"enable_thinking": True}),
    ("think_preserve", W, [
        U("Weather?"), A(None, [call("get_weather", PARIS, "c")], reasoning="need the tool"),
        T("Sunny", "c"), A("Sunny."), U("And tomorrow?")],
     {"enable_thinking": True, "preserve_thinking": True}),
    ("think_not_preserved", W, [
        U("Weather?"), A(None, [call("get_weather", PARIS, "c")], reasoning="need the tool"),
        T("Sunny", "c"), A("Sunny."), U("And tomorrow?")], {"enable_thinking": True}),
    ("think_off_reasoning_after_user", None, [U("q"), A("a", reasoning="r")], {}),
    ("developer_role", W, [{"role": "developer", "content": "  dev rules  "}, U("hi")], {}),
    ("system_parts", None, [{"role": "system", "content": [
        {"type": "text", "text": " one "}, {"type": "text", "text": "two"}]}, U("hi")], {}),
    ("user_parts", None, [{"role": "user", "content": [
        {"type": "text", "text": " a "}, {"type": "text", "text": "b "}]}], {}),
    ("assistant_parts_thinking", None, [U("q"), {"role": "assistant", "content": [
        {"type": "text", "text": "<|channel>x<channel|> ans "}]}, U("r")], {}),
    ("late_system_with_tools", W, [U("a"), S("late"), U("b")], {}),
    ("model_role_call", W, [U("x"), {"role": "model", "content": None, "tool_calls": [
        call("get_weather", {"city": "P"}, "c")]}, T("Sunny", "c")], {}),
]


def render(tok, template, tools, msgs, opts):
    tok.chat_template = template
    conv = copy.deepcopy(msgs)
    for m in conv:
        for c in m.get("tool_calls") or []:
            if isinstance(c["function"].get("arguments"), str):
                c["function"]["arguments"] = json.loads(c["function"]["arguments"])
    kw = {}
    if opts.get("enable_thinking"):
        kw["enable_thinking"] = True
    if opts.get("preserve_thinking"):
        kw["preserve_thinking"] = True
    return tok.apply_chat_template(conv, tools=tools, tokenize=False,
                                   add_generation_prompt=opts.get("add_generation_prompt", True),
                                   **kw)


def main():
    templates = {}
    for key, fname in (("e2b", "gemma4_chat_template.jinja"),
                       ("31b", "gemma4_31b_chat_template.jinja")):
        with open(os.path.join(HERE, fname), encoding="utf-8") as f:
            templates[key] = f.read()
    tok = PreTrainedTokenizerFast(tokenizer_file=TOKENIZER, bos_token="<bos>", eos_token="<eos>",
                                  pad_token="<pad>", unk_token="<unk>")
    out = []
    for key in ("e2b", "31b"):
        for name, tools, msgs, opts in CASES:
            text = render(tok, templates[key], tools, msgs, opts)
            ids = tok(text, add_special_tokens=False)["input_ids"]
            out.append(json.dumps({
                "name": name, "template": key,
                "add_generation_prompt": opts.get("add_generation_prompt", True),
                "enable_thinking": bool(opts.get("enable_thinking")),
                "preserve_thinking": bool(opts.get("preserve_thinking")),
                "messages": msgs, "tools": tools, "expected": text, "ids": ids},
                ensure_ascii=False))
    path = os.path.join(HERE, "expected_tools.jsonl")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(out) + "\n")
    print(f"wrote {len(out)} cases ({len(CASES)} conversations x 2 templates) to {path}")


if __name__ == "__main__":
    main()
