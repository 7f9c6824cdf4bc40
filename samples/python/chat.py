#!/usr/bin/env python3
"""Streaming multi-turn chat with a Gemma 4 checkpoint.

usage: python3 samples/python/chat.py MODEL_DIR [--cuda] [--max-tokens N]
Finds libgemma4 in the repository's build/ (scripts/build.sh or scripts/run.sh makes it), or
where GEMMA4_LIBRARY says.
Ctrl-C while the model answers stops the answer; Ctrl-C or Ctrl-D at the prompt quits.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bindings", "python"))
import gemma4  # noqa: E402


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model_dir")
    ap.add_argument("--cuda", action="store_true")
    ap.add_argument("--system", default=None, help="system prompt")
    ap.add_argument("--temperature", type=float, default=0.7)
    ap.add_argument("--max-tokens", type=int, default=gemma4.DEFAULT_MAX_TOKENS)
    args = ap.parse_args()

    with gemma4.Model.load(args.model_dir, device="cuda" if args.cuda else "cpu") as model:
        messages = [{"role": "system", "content": args.system}] if args.system else []
        with model.session() as session:
            while True:
                try:
                    user = input("> ")
                except (EOFError, KeyboardInterrupt):
                    print()
                    return
                if not user.strip():
                    continue
                messages.append({"role": "user", "content": user})
                reply = []
                try:
                    for piece in session.chat(messages, max_tokens=args.max_tokens,
                                              temperature=args.temperature, top_p=0.95):
                        reply.append(piece)
                        print(piece, end="", flush=True)
                except KeyboardInterrupt:
                    print(" [stopped]", end="")
                except gemma4.ContextFullError:
                    print("\n[context full: starting over]")
                    session.reset()
                    messages = messages[-1:]
                    continue
                print()
                messages.append({"role": "model", "content": "".join(reply)})


if __name__ == "__main__":
    main()
