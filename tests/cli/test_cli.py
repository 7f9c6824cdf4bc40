#!/usr/bin/env python3
"""Drives gemma4-chat (samples/chat.c) as a user would, on the tiny fixture model.

usage: test_cli.py GEMMA4_CHAT MODEL_DIR      (ctest test_cli; standard library only)

Checks --help/--version, that every bad option or value is a usage error naming it, the
messages of load and generate errors, the prompt from standard input, -v's load progress and
model line, the interactive commands (/reset really starts over, /exit, end of input) and Ctrl-C
(stops the reply being generated, not the program; at the prompt it quits). Prints one line per
check and "N passed, N failed" at the end; exits 1 when a check failed.
"""
import os
import signal
import subprocess
import sys
import time

CHAT, MODEL = sys.argv[1], sys.argv[2]
passed, failed = 0, 0


def run(args, stdin="", timeout=60):
    p = subprocess.run([CHAT] + args, input=stdin.encode(), capture_output=True, timeout=timeout)
    return p.returncode, p.stdout.decode(errors="replace"), p.stderr.decode(errors="replace")


def check(name, ok, detail=""):
    global passed, failed
    if ok:
        passed += 1
        print("PASS", name)
    else:
        failed += 1
        print("FAIL", name, detail)


# ---- --help, --version ----
rc, out, err = run(["--help"])
check("--help: exit 0, usage on stdout", rc == 0 and out.startswith("usage: gemma4-chat") and
      "--max-tokens" in out and err == "", (rc, out[:80], err))
rc, out, err = run(["--version"])
check("--version", rc == 0 and "libgemma4 " in out, (rc, out, err))

# ---- usage errors: exit 2, the option (and value) named, nothing on stdout ----
bad = [
    (["--temp", "abc"], ["--temp", "abc"]),
    (["--temp", "-1"], ["--temp", "-1"]),
    (["--temp=nan"], ["--temp", "nan"]),
    (["--precision", "fp16"], ["--precision", "fp16"]),
    (["--device", "gpu"], ["--device", "gpu"]),
    (["--top-p", "1.5"], ["--top-p", "1.5"]),
    (["--top-k", "-2"], ["--top-k", "-2"]),
    (["--min-p", "2"], ["--min-p", "2"]),
    (["--repeat-penalty", "0"], ["--repeat-penalty", "0"]),
    (["-n", "ten"], ["-n", "ten"]),
    (["-n", "-5"], ["-n", "-5"]),
    (["--ctx", "1e3"], ["--ctx", "1e3"]),
    (["--threads", "100000"], ["--threads", "100000"]),
    (["--seed", "-1"], ["--seed", "-1"]),
    (["--bogus"], ["unknown option", "--bogus"]),
    (["stray"], ["unexpected argument", "stray"]),
    (["--prompt"], ["--prompt needs a value"]),
]
for args, words in bad:
    rc, out, err = run(["--model", MODEL] + args)
    check("usage error " + " ".join(args), rc == 2 and out == "" and all(w in err for w in words),
          (rc, out, err))
rc, out, err = run(["-p", "hi"])
check("no --model: usage error", rc == 2 and "--model" in err, (rc, err))

# ---- library errors: one clear message ----
rc, out, err = run(["--model", "/nonexistent/model", "-p", "hi"])
check("missing model directory", rc == 1 and "/nonexistent/model: does not exist" in err and
      err.count("load:") == 1, (rc, err))
rc, out, err = run(["--model", MODEL, "--ctx", "8", "-p", "a long prompt that needs more than eight positions"])
check("generate error has one prefix", rc == 1 and "generate: prompt of" in err and
      "generate: generate:" not in err, (rc, err))

# ---- the prompt: --prompt or standard input, same reply ----
rc1, out1, err1 = run(["--model", MODEL, "-n", "12", "-p", "Tell me about the sea."])
rc2, out2, err2 = run(["--model", MODEL, "-n", "12"], stdin="Tell me about the sea.\n")
check("prompt from stdin = --prompt", rc1 == 0 and rc2 == 0 and out1.strip() and out1 == out2,
      (rc1, rc2, out1, out2, err2))
rc, out, err = run(["--model", MODEL], stdin="")
check("empty stdin: usage error", rc == 2 and "empty" in err, (rc, err))
rc, out, err = run(["--model", MODEL, "-p", "Hello"])  # its greedy reply runs to 296 tokens
check("default reply length: 256 tokens", rc == 0 and "generation: 256 tokens" in err, err)

# ---- -v: load progress through the log callback and the model line ----
rc, out, err = run(["--model", MODEL, "-n", "2", "--threads", "1", "-v", "-p", "hi"])
check("-v: load progress", rc == 0 and "gemma4: load " in err and "tokenizer: 512 tokens" in err, err)
check("-v: model line", "gemma4-chat: custom from %s: " % MODEL in err and "MB of weights, CPU, 1 threads, context" in err, err)
rc, out, err = run(["--model", MODEL, "-n", "2", "-p", "hi"])
check("without -v: quiet load", rc == 0 and "gemma4: load" not in err and "MB of weights" not in err, err)

# ---- interactive: /reset starts over, /exit, unknown commands, end of input ----
_, fresh, _ = run(["--model", MODEL, "-n", "10", "-p", "hello"])
rc, out, err = run(["--model", MODEL, "-n", "10", "-i"], stdin="hi\n/reset\nhello\n/nope\n/exit\nnot read\n")
replies = [r.strip() for r in out.split("> ") if r.strip()]
check("interactive /reset then /exit", rc == 0 and "[new conversation]" in err and
      "unknown command /nope" in err and err.count("[prompt:") == 2, (rc, out, err))
check("after /reset the reply is a first turn's", len(replies) == 2 and replies[1] == fresh.strip(),
      (replies, fresh))
_, second, _ = run(["--model", MODEL, "-n", "10", "-i"], stdin="hi\nhello\n")
check("without /reset the same line continues the conversation",
      [r.strip() for r in second.split("> ") if r.strip()][1] != fresh.strip(), second)
rc, out, err = run(["--model", MODEL, "-n", "4", "-i", "-p", "hi"], stdin="")
check("-i with --prompt, end of input quits", rc == 0 and err.count("[prompt:") == 1, (rc, err))

# ---- Ctrl-C: stops the reply, not the program ----
long_prompt = "the sea " * 1600  # ~8000 tokens: seconds of prefill, so SIGINT lands in it


def start(args):
    return subprocess.Popen([CHAT, "--model", MODEL, "--ctx", "16384"] + args, stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)


p = start(["-i", "-n", "4"])
p.stdin.write((long_prompt + "\n").encode())
p.stdin.flush()
time.sleep(1.0)
p.send_signal(signal.SIGINT)
out, err = p.communicate(("hello\n/exit\n").encode(), timeout=120)
err = err.decode(errors="replace")
check("Ctrl-C in interactive mode stops the reply", "[stopped]" in err, err)
check("... and the chat goes on", p.returncode == 0 and err.count("[prompt:") == 2 and
      "[stopped]" in err and err.index("[stopped]") < err.rindex("[prompt:"), (p.returncode, err))

p = start(["-n", "4", "-p", long_prompt])
time.sleep(1.0)
p.send_signal(signal.SIGINT)
out, err = p.communicate(timeout=120)
check("Ctrl-C without -i: stops, exit 130", p.returncode == 130 and b"[stopped]" in err,
      (p.returncode, err))

p = start(["-i"])
time.sleep(1.0)  # loaded and waiting at "> "
p.send_signal(signal.SIGINT)
try:
    p.wait(timeout=60)  # stdin stays open: only the signal can end it
except subprocess.TimeoutExpired:
    p.kill()
out, err = p.communicate(timeout=60)
check("Ctrl-C at the prompt quits", p.returncode == 130, (p.returncode, err))

print("%d passed, %d failed" % (passed, failed))
sys.exit(1 if failed else 0)
