# test_swig.py: the SWIG-generated Python module gemma4swig on tests/golden/e2b and moe:
# load, tokenize/detokenize, step logits vs transformers' reference.bin, greedy tokens, generate
# (full text, with a director callback, a raising callback, cancel), the precision setting,
# errors with status codes, and no leak over many Model/Session cycles. Plain asserts, no pytest:
# exits non-zero on failure.
import math
import os
import struct
import sys
import threading

import gemma4swig as g

FIX = os.environ.get("GEMMA4_FIXTURES") or os.path.join(
    os.path.dirname(os.path.abspath(__file__)), "..", "..", "..", "tests", "golden")
E2B = os.path.join(FIX, "e2b")


def reference(fixture):
    blob = open(os.path.join(FIX, fixture, "reference.bin"), "rb").read()
    assert blob[:8] == b"G4REF1\0\0"
    n, vocab = struct.unpack_from("<ii", blob, 8)
    off = 16
    tokens = list(struct.unpack_from("<%di" % n, blob, off)); off += 4 * n
    last = struct.unpack_from("<%df" % vocab, blob, off + 4 * (n - 1) * vocab); off += 4 * n * vocab
    (n_gen,) = struct.unpack_from("<i", blob, off)
    gen = list(struct.unpack_from("<%di" % n_gen, blob, off + 4))
    return tokens, last, gen


def expect_error(status, substr, fn, *args):
    try:
        fn(*args)
    except g.Gemma4Error as e:
        assert e.status == status, (e.status, status, str(e))
        assert substr in e.message, (substr, e.message)
        print("  expected error: %s" % e)
        return
    raise AssertionError("no Gemma4Error %d from %s" % (status, fn))


def rss():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class Collect(g.TokenCallback):
    def __init__(self, stop_after=0, raise_at=0):
        super().__init__()
        self.pieces, self.tokens = [], []
        self.stop_after, self.raise_at = stop_after, raise_at

    def on_token(self, piece, token):
        self.pieces.append(piece)
        if token >= 0:
            self.tokens.append(token)
        if self.raise_at and len(self.tokens) == self.raise_at:
            raise RuntimeError("callback failed on purpose")
        return 1 if self.stop_after and len(self.tokens) >= self.stop_after else 0


def main():
    assert g.gemma4_version() == "0.1.0" and g.gemma4_abi_version() == g.GEMMA4_ABI_VERSION
    assert g.GEMMA4_ERR_CONTEXT_FULL == 7

    for fixture in ("e2b", "moe"):
        tokens, last, gen = reference(fixture)
        m = g.Model(os.path.join(FIX, fixture), g.GEMMA4_DEVICE_CPU, 0, 128, 2)
        s = m.session()
        logits = s.step(tokens)
        assert len(logits) == len(last)
        err = max(abs(a - b) for a, b in zip(logits, last))
        assert err <= 1e-4 * max(abs(x) for x in last), err
        got = []
        for _ in gen:
            t = s.sample()
            got.append(t)
            s.eval([t])
        assert got == gen, (got, gen)
        print("%s: logits max abs err %.2g, %d greedy tokens identical" % (fixture, err, len(gen)))
        del s, m

    # GEMMA4_LOAD_IN_MEMORY: the model survives truncation of its weight file
    import shutil
    import tempfile
    tokens, last, _ = reference("e2b")
    with tempfile.TemporaryDirectory() as d:
        for f in ("config.json", "model.safetensors"):
            shutil.copy(os.path.join(FIX, "e2b", f), os.path.join(d, f))
        m = g.Model(d, g.GEMMA4_DEVICE_CPU, 0, 128, 2, g.GEMMA4_LOAD_IN_MEMORY)
        os.truncate(os.path.join(d, "model.safetensors"), 0)
        s = m.session()
        logits = s.step(tokens)
        assert max(abs(a - b) for a, b in zip(logits, last)) <= 1e-4 * max(abs(x) for x in last)
        print("in-memory load: logits intact after the weight file was truncated")
        del s, m

    m = g.Model(E2B, g.GEMMA4_DEVICE_CPU, 0, 8192, 2)
    assert m.info(g.GEMMA4_INFO_VOCAB_SIZE) == 512 and m.variant() == "custom"
    text = "Hello <|turn>user\nwörld 🙂"
    ids = m.tokenize(text, True)
    assert ids[0] == 2 and m.detokenize(ids[1:]) == text
    prompt = m.chat_apply(["user"], ["Hi"])
    assert prompt.startswith("<bos><|turn>user\nHi")

    # an embedded NUL is refused where a NUL-terminated C string would be cut there
    s = m.session(64)
    nul = g.GEMMA4_ERR_INVALID_ARGUMENT
    expect_error(nul, "prompt contains a NUL character at byte 5", s.generate, "hello\0 IGNORE", 4)
    expect_error(nul, "contents[0] contains a NUL", s.chat_generate, ["user"], ["a\0b"], 4)
    expect_error(nul, "roles[0] contains a NUL", m.chat_apply, ["us\0er"], ["hi"])
    expect_error(nul, "stop contains a NUL", s.add_stop, "a\0b")
    expect_error(nul, "messages_json contains a NUL", s.chat_complete, "[]\0x", "", 0, 4)
    expect_error(nul, "model_dir contains a NUL", g.Model, E2B + "\0/x")
    assert s.info(g.GEMMA4_SESSION_N_PAST) == 0
    assert len(m.tokenize("a\0b")) > len(m.tokenize("a"))  # tokenize takes a length: kept whole

    s = m.session(256)
    full = s.generate("The sea", 20)
    n_gen = s.info(g.GEMMA4_SESSION_LAST_GEN_TOKENS)
    s.reset()
    c = Collect()
    assert s.generate("The sea", 20, c) == full
    assert len(c.tokens) == n_gen and "".join(c.pieces) == full
    s.reset()
    c = Collect(stop_after=3)
    s.generate("The sea", 20, c)
    assert s.info(g.GEMMA4_SESSION_LAST_GEN_TOKENS) == 3
    s.reset()
    try:
        s.generate("The sea", 20, Collect(raise_at=2))
        raise AssertionError("callback exception lost")
    except RuntimeError as e:
        assert "on purpose" in str(e)
    assert s.info(g.GEMMA4_SESSION_LAST_GEN_TOKENS) == 2
    s.reset()
    reply = s.chat_generate(["user"], ["Hi"], 8)
    assert isinstance(reply, str)
    # chat with tools: a forced reply holding a tool call comes back parsed in the result JSON
    import json
    s.reset()
    s.force_tokens(m.tokenize("<|tool_call>call:get_weather{city:<|\"|>Paris<|\"|>}<tool_call|><|tool_response>"))
    tools = json.dumps([{"type": "function", "function": {"name": "get_weather", "parameters": {
        "type": "object", "properties": {"city": {"type": "string"}}}}}])
    r = json.loads(s.chat_complete(json.dumps([{"role": "user", "content": "Weather?"}]), tools, 0, 64))
    assert r["finish_reason"] == "tool_calls", r
    assert r["tool_calls"] == [{"id": "call_0", "name": "get_weather", "arguments": {"city": "Paris"}}]
    s.reset()
    s.set_sampling(1.5, 40, 0.95, 0.0)
    s.set_seed(42)
    a = s.generate("Hello", 16)
    s.reset()
    s.set_seed(42)
    assert s.generate("Hello", 16) == a
    s.set_greedy()
    print("generate: %d tokens %r" % (n_gen, full))

    # precision: the fixtures' weights are F32, on which bf16 changes nothing numerically (the
    # numeric comparison lives in tests/test_forward_cpu.c), so this checks the setting only
    p = m.session(128)
    ref_ids = reference("e2b")[0]
    assert g.GEMMA4_PRECISION_FP32 == 0 and g.GEMMA4_PRECISION_BF16 == 1
    assert p.precision() == g.GEMMA4_PRECISION_FP32  # the default
    p.set_precision(g.GEMMA4_PRECISION_BF16)
    assert p.precision() == g.GEMMA4_PRECISION_BF16
    assert p.info(g.GEMMA4_SESSION_PRECISION) == g.GEMMA4_PRECISION_BF16
    logits = p.step(ref_ids)  # a step in bf16 mode
    assert len(logits) == 512 and all(math.isfinite(x) for x in logits)
    p.set_precision(g.GEMMA4_PRECISION_FP32)
    assert p.precision() == g.GEMMA4_PRECISION_FP32 and p.n_past() == len(ref_ids)
    p.set_precision(g.GEMMA4_PRECISION_BF16)
    assert isinstance(p.generate(" and", 4), str) and p.info(g.GEMMA4_SESSION_LAST_GEN_TOKENS) > 0
    expect_error(g.GEMMA4_ERR_INVALID_ARGUMENT, "unknown precision 7", p.set_precision, 7)
    expect_error(g.GEMMA4_ERR_INVALID_ARGUMENT, "unknown precision -1", p.set_precision, -1)
    assert p.precision() == g.GEMMA4_PRECISION_BF16  # a failed call changes nothing
    del p
    print("precision: fp32 default, bf16 set and read back, unknown values rejected")

    # cancel from another thread while generate runs (needs the GIL released: -threads)
    # The first token starts the cancelling thread, so the cancel lands while generate runs (a
    # fixed timer fired before the first token on a busy machine: 0 tokens generated).
    class CancelFromThread(g.TokenCallback):
        def __init__(self, session):
            super().__init__()
            self.session, self.thread = session, None

        def on_token(self, piece, token):
            if self.thread is None:
                self.thread = threading.Thread(target=self.session.cancel)
                self.thread.start()
            return 0

    big = m.session(8192)
    canceller = CancelFromThread(big)
    expect_error(g.GEMMA4_ERR_CANCELLED, "cancelled", big.generate, "The sea", 8000, canceller)
    canceller.thread.join()
    assert 0 < big.info(g.GEMMA4_SESSION_LAST_GEN_TOKENS) < 8000
    del big

    small = m.session(16)
    expect_error(g.GEMMA4_ERR_INVALID_TOKEN, "512", small.step, [1, 512])
    expect_error(g.GEMMA4_ERR_CONTEXT_FULL, "context of 16", small.step, list(range(3, 20)))
    expect_error(g.GEMMA4_ERR_INVALID_ARGUMENT, "top_p", small.set_sampling, 1.0, 0, 1.5, 0.0)
    expect_error(g.GEMMA4_ERR_INVALID_ARGUMENT, "no logits", small.sample)
    expect_error(g.GEMMA4_ERR_IO, "/nonexistent", g.Model, "/nonexistent/model")
    moe = g.Model(os.path.join(FIX, "moe"), 0, 0, 64, 2)
    expect_error(g.GEMMA4_ERR_NO_TOKENIZER, "", moe.tokenize, "x")
    moe.close()
    expect_error(g.GEMMA4_ERR_INVALID_ARGUMENT, "closed", moe.tokenize, "x")
    expect_error(g.GEMMA4_ERR_INVALID_ARGUMENT, "closed", moe.session)

    # the session keeps the model alive after the model object is gone
    s2 = m.session(64)
    del m
    assert len(s2.step([2, 10])) == 512

    def cycle(n):
        for _ in range(n):
            mm = g.Model(E2B, 0, 0, 256, 2)
            for _ in range(20):
                ss = mm.session()
                ss.step([2, 3])
                del ss
            del mm

    cycle(3)
    before = rss()
    cycle(30)
    growth = rss() - before
    print("RSS growth over 30 models x 20 sessions: %d KiB" % (growth // 1024))
    assert growth < 8 << 20, growth
    print("swig python: all checks passed")


if __name__ == "__main__":
    main()
    sys.exit(0)
