#!/usr/bin/env python3
"""A tool-calling agent loop on Gemma 4 with the OpenAI / llama-cpp-python shapes.

usage: GEMMA4_LIBRARY=build python3 samples/python/tools.py MODEL_DIR "What is 12*34 in Paris' weather?"
         [--think] [--cuda] [--max-rounds N]

The library renders the tool declarations, the model's tool calls and the results (Gemma 4's
own format) and parses the calls back; this loop only runs the Python functions.
"""
import argparse
import json
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bindings", "python"))
import gemma4  # noqa: E402

TOOLS = [
    {"type": "function", "function": {
        "name": "get_weather", "description": "Current weather for a city.",
        "parameters": {"type": "object", "properties": {
            "city": {"type": "string", "description": "City name"}}, "required": ["city"]}}},
    {"type": "function", "function": {
        "name": "calculate", "description": "Evaluate an arithmetic expression.",
        "parameters": {"type": "object", "properties": {
            "expression": {"type": "string", "description": "e.g. 12*34"}}, "required": ["expression"]}}},
]


def get_weather(city):
    return {"city": city, "sky": "clear", "temperature_c": 21}


def calculate(expression):
    if not set(expression) <= set("0123456789+-*/(). "):
        return {"error": "only arithmetic is allowed"}
    return {"value": eval(expression, {"__builtins__": {}})}  # digits and operators only


FUNCTIONS = {"get_weather": get_weather, "calculate": calculate}


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model_dir")
    ap.add_argument("question")
    ap.add_argument("--think", action="store_true", help="let the model think first")
    ap.add_argument("--cuda", action="store_true")
    ap.add_argument("--max-rounds", type=int, default=4)
    ap.add_argument("--max-tokens", type=int, default=512)
    args = ap.parse_args()

    llm = gemma4.Llama(model_path=args.model_dir, n_gpu_layers=-1 if args.cuda else 0)
    messages = [{"role": "user", "content": args.question}]
    try:
        for _ in range(args.max_rounds):
            r = llm.create_chat_completion(messages, tools=TOOLS, max_tokens=args.max_tokens,
                                           enable_thinking=args.think)
            msg = r["choices"][0]["message"]
            if msg.get("reasoning_content"):
                print("[thinking] " + msg["reasoning_content"])
            messages.append(msg)  # the reply goes back as is, tool calls included
            if r["choices"][0]["finish_reason"] != "tool_calls":
                print(msg["content"])
                break
            for call in msg["tool_calls"]:
                fn = FUNCTIONS.get(call["function"]["name"])
                args_ = json.loads(call["function"]["arguments"])
                result = fn(**args_) if fn else {"error": "no such function"}
                print("[tool] %s(%s) -> %s" % (call["function"]["name"], args_, result))
                messages.append({"role": "tool", "tool_call_id": call["id"],
                                 "content": json.dumps(result)})
        u = r["usage"]
        print("[usage] prompt %d (cached %d), completion %d" % (
            u["prompt_tokens"], u["prompt_tokens_details"]["cached_tokens"], u["completion_tokens"]))
    finally:
        llm.close()


if __name__ == "__main__":
    main()
