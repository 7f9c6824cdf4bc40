# test_gemma4.py: the Python binding on the golden fixtures of tests/golden (see its README):
# logits and greedy tokens against transformers' reference.bin, generate == manual step/sample,
# text round trip, every documented error with its status and message, streaming, cancellation
# (generator close, KeyboardInterrupt, cancel from another thread), seeded sampling, ownership
# (model freed before its session, double close) and no leak over 1000 session cycles.
# Run with bindings/python/run_tests.sh (sets GEMMA4_LIBRARY).
import _thread
import gc
import os
import struct
import threading
import time

import numpy as np
import pytest

import gemma4
from gemma4 import model as gmodel

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", "..", ".."))
GOLDEN = os.path.join(ROOT, "tests", "golden")
E2B = os.path.join(GOLDEN, "e2b")
FIXTURES = ["e2b", "moe", "dense31b", "multimodal"]
N_THREADS = 2

# transformers' float32 logits are within ~1.3e-4 absolute of a float64 forward and max|logit|
# is ~14 (tests/golden/README.md): 1e-4 of the row's max |logit| (~1.4e-3) leaves room for a
# different float32 summation order but catches any real error.
REL_TOL = 1e-4


def read_reference(fixture):
    """tests/golden/<fixture>/reference.bin -> (tokens, logits (n_tokens, vocab), gen)."""
    with open(os.path.join(GOLDEN, fixture, "reference.bin"), "rb") as f:
        blob = f.read()
    assert blob[:8] == b"G4REF1\0\0"
    n_tokens, vocab = struct.unpack_from("<ii", blob, 8)
    off = 16
    tokens = np.frombuffer(blob, "<i4", n_tokens, off); off += 4 * n_tokens
    logits = np.frombuffer(blob, "<f4", n_tokens * vocab, off).reshape(n_tokens, vocab)
    off += 4 * n_tokens * vocab
    (n_gen,) = struct.unpack_from("<i", blob, off); off += 4
    gen = np.frombuffer(blob, "<i4", n_gen, off)
    return tokens.tolist(), logits, gen.tolist()


def rss_bytes():
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


@pytest.fixture(scope="module")
def model():
    with gemma4.Model.load(E2B, n_ctx=512, n_threads=N_THREADS) as m:
        yield m


def manual_greedy(model, session, ids, max_tokens):
    """Greedy continuation through step/sample, stopping where gemma4_generate stops."""
    info = model.info
    stops = {info.eos_id, info.end_of_turn_id}
    session.set_greedy()
    session.step(ids, logits=False)
    out = []
    for _ in range(max_tokens):
        tok = session.sample()
        if tok in stops:
            break
        out.append(tok)
        session.step(tok, logits=False)
    return out


# ---- numerics ----------------------------------------------------------------------------------

@pytest.mark.parametrize("fixture", FIXTURES)
def test_logits_and_greedy_match_transformers(fixture):
    tokens, ref_logits, gen = read_reference(fixture)
    with gemma4.Model.load(os.path.join(GOLDEN, fixture), n_ctx=128, n_threads=N_THREADS) as m:
        with m.session() as s:
            logits = s.step(tokens)
            assert isinstance(logits, np.ndarray) and logits.dtype == np.float32
            assert logits.shape == (ref_logits.shape[1],)
            ref = ref_logits[-1]
            err = float(np.max(np.abs(logits - ref)))
            scale = float(np.max(np.abs(ref)))
            print("%s: last-position logits max abs err %.3g (max |ref| %.3g)" % (fixture, err, scale))
            assert err <= REL_TOL * scale
            got = []
            for _ in range(len(gen)):
                tok = s.sample()
                got.append(tok)
                s.step(tok, logits=False)
            assert got == gen


def test_prefill_equals_token_by_token(model):
    tokens, ref_logits, _ = read_reference("e2b")
    with model.session() as s:
        for i, t in enumerate(tokens[:12]):
            row = s.step([t])
            assert np.max(np.abs(row - ref_logits[i])) <= REL_TOL * np.max(np.abs(ref_logits[i]))
        assert s.n_past == 12


def test_step_out_buffer_and_list_fallback(model, monkeypatch):
    tokens, ref_logits, _ = read_reference("e2b")
    with model.session() as s:
        out = np.zeros(model.vocab_size, dtype=np.float32)
        got = s.step(tokens[:5], out=out)
        assert got is out and np.any(out != 0)
        with pytest.raises(gemma4.BufferTooSmallError) as e:
            s.step(tokens[5], out=np.zeros(10, dtype=np.float32))
        assert e.value.status == 8 and "512" in e.value.message
        s.reset()
        monkeypatch.setattr(gmodel, "_np", None)  # as if numpy were not installed
        lst = s.step(tokens[:5])
        assert isinstance(lst, list) and len(lst) == 512 and isinstance(lst[0], float)
        assert np.allclose(lst, out, atol=1e-6)


def test_load_in_memory_survives_truncated_file(tmp_path):
    import shutil
    for name in ("config.json", "model.safetensors"):
        shutil.copy(os.path.join(E2B, name), tmp_path / name)
    tokens, ref_logits, _ = read_reference("e2b")
    with gemma4.Model.load(tmp_path, n_ctx=64, n_threads=N_THREADS, in_memory=True) as m:
        os.truncate(tmp_path / "model.safetensors", 0)
        with m.session() as s:
            row = s.step(tokens[:4])
            assert np.max(np.abs(row - ref_logits[3])) <= REL_TOL * np.max(np.abs(ref_logits[3]))


def test_truncate_rewinds_exactly(model):
    tokens, _, _ = read_reference("e2b")
    with model.session() as a, model.session() as b:
        a.step(tokens[:30], logits=False)
        a.truncate(10)
        assert a.n_past == 10
        la = a.step(tokens[10])
        lb = b.step(tokens[:11])
        assert np.max(np.abs(la - lb)) < 1e-4
        with pytest.raises(gemma4.InvalidArgumentError) as e:
            a.truncate(100)
        assert e.value.status == 1 and "n_keep 100" in e.value.message


# ---- text --------------------------------------------------------------------------------------

def test_tokenize_detokenize_round_trip(model):
    text = "Hello <|turn>user\nwörld 🙂"
    ids = model.tokenize(text, add_bos=True)
    assert ids[0] == model.info.bos_id == 2
    (turn,) = model.tokenize("<|turn>")  # special-token text is one token
    assert turn in ids and model.tokenize("<turn|>") == [model.info.end_of_turn_id]
    assert model.detokenize(ids[1:]) == text
    assert model.detokenize(ids) == "<bos>" + text
    assert model.detokenize(ids, skip_special=True) == text.replace("<|turn>", "")
    assert model.tokenize("") == []
    assert b"".join(model.token_piece(t) for t in ids[1:]).decode("utf-8") == text
    assert model.detokenize(np.array(ids[1:], dtype=np.int64)) == text


def test_model_info(model):
    info = model.info
    assert (info.vocab_size, info.n_layers, info.bos_id, info.n_ctx) == (512, 8, 2, 512)
    assert info.weight_bytes > 1_000_000 and info.device == "cpu"
    assert info.variant == model.variant == "custom"
    with model.session(n_ctx=64) as s:
        si = s.info
        assert (si.n_past, si.n_ctx, si.n_evaluated) == (0, 64, 0) and si.kv_bytes > 0


def test_precision(model):
    # The fixtures' weights are F32, on which bf16 mode changes nothing numerically (the numeric
    # comparison lives in tests/test_forward_cpu.c), so this checks the setting, not the math.
    with model.session() as s:
        assert s.precision == "fp32" and s.info.precision == "fp32"  # the default
        s.set_precision("bf16")
        assert s.precision == "bf16" and s.info.precision == "bf16"
        tokens, ref_logits, _ = read_reference("e2b")
        logits = s.step(tokens)  # a step in bf16 mode
        assert logits.shape == (model.vocab_size,) and np.all(np.isfinite(logits))
        assert s.n_past == len(tokens)
        s.set_precision(gemma4.PRECISION_FP32)  # the constants work too; the cache is kept
        assert s.precision == "fp32" and s.n_past == len(tokens)
        s.set_precision(gemma4.PRECISION_BF16)
        text = s.generate(" and", max_tokens=4, stream=False)
        assert isinstance(text, str) and s.info.last_gen_tokens > 0 and s.precision == "bf16"
        for bad in (7, -1):
            with pytest.raises(gemma4.InvalidArgumentError) as e:
                s.set_precision(bad)
            assert e.value.status == 1 and "unknown precision %d" % bad in e.value.message
        with pytest.raises(gemma4.InvalidArgumentError) as e:
            s.set_precision("fp16")
        assert "'fp16'" in e.value.message
        with pytest.raises(gemma4.InvalidArgumentError):
            s.set_precision(2 ** 32)  # would wrap to 0 in a C int32
        with pytest.raises(TypeError):
            s.set_precision(1.0)
        assert s.precision == "bf16"  # a failed call changes nothing
    with model.session(n_ctx=64, precision="bf16") as s:
        assert s.precision == "bf16" and s.n_ctx == 64
    with model.session(precision=gemma4.PRECISION_FP32) as s:
        assert s.precision == "fp32"
    with pytest.raises(gemma4.InvalidArgumentError) as e:
        model.session(precision=5)
    assert "unknown precision 5" in e.value.message


def test_chat_template(model):
    msgs = [{"role": "user", "content": "Hi"}]
    text = model.apply_chat_template(msgs)
    assert text.startswith("<bos><|turn>user\nHi") and text.endswith("model\n")
    assert not model.apply_chat_template(msgs, add_generation_prompt=False).endswith("model\n")


# ---- errors ------------------------------------------------------------------------------------

def test_error_invalid_token(model):
    with model.session(n_ctx=16) as s:
        for bad in ([1, 512], [-1]):
            with pytest.raises(gemma4.InvalidTokenError) as e:
                s.step(bad)
            assert e.value.status == 10 and e.value.name == "GEMMA4_ERR_INVALID_TOKEN"
            assert str(bad[-1]) in e.value.message
            assert isinstance(e.value, ValueError) and isinstance(e.value, gemma4.Gemma4Error)
        assert s.n_past == 0  # checks come first and leave the session unchanged
        with pytest.raises(gemma4.InvalidTokenError):
            s.step([2 ** 40])
        with pytest.raises(gemma4.InvalidTokenError) as e:
            model.detokenize([9999])
        assert e.value.status == 10


def test_error_context_full(model):
    with model.session(n_ctx=16) as s:
        with pytest.raises(gemma4.ContextFullError) as e:
            s.step(list(range(3, 20)))
        assert e.value.status == 7 and "context of 16" in e.value.message
        assert s.n_past == 0
        s.step(list(range(3, 19)))
        with pytest.raises(gemma4.ContextFullError) as e:
            s.step(3)
        assert e.value.status == 7 and "position 16" in e.value.message
    with model.session(n_ctx=4) as s:
        with pytest.raises(gemma4.ContextFullError):
            s.generate("a b c d e f g h i j", max_tokens=5, stream=False)
        assert s.n_past == 0


def test_error_bad_path():
    with pytest.raises(gemma4.IoError) as e:
        gemma4.Model.load("/nonexistent/model")
    assert e.value.status == 2 and "/nonexistent/model" in e.value.message
    assert isinstance(e.value, OSError)
    with pytest.raises(gemma4.IoError) as e:
        gemma4.Model.load(os.path.join(ROOT, "tests"))
    assert "config.json" in e.value.message
    with pytest.raises(gemma4.InvalidArgumentError) as e:
        gemma4.Model.load(E2B, device="tpu")
    assert e.value.status == 1


def test_error_no_tokenizer():
    with gemma4.Model.load(os.path.join(GOLDEN, "moe"), n_ctx=64, n_threads=N_THREADS) as m:
        for call in (lambda: m.tokenize("x"), lambda: m.detokenize([3]),
                     lambda: m.session().generate("x", stream=False)):
            with pytest.raises(gemma4.NoTokenizerError) as e:
                call()
            assert e.value.status == 13 and e.value.message


def test_error_bad_arguments(model):
    with model.session() as s:
        with pytest.raises(gemma4.InvalidArgumentError) as e:
            s.set_sampling(temperature=1.0, top_p=1.5)
        assert e.value.status == 1 and "top_p" in e.value.message
        with pytest.raises(gemma4.InvalidArgumentError) as e:
            s.generate("x", temperature=-1.0)
        assert "temperature" in e.value.message
        with pytest.raises(gemma4.InvalidArgumentError) as e:
            s.sample()
        assert "no logits" in e.value.message
        with pytest.raises(gemma4.InvalidArgumentError):
            s.generate("x", stop=[""])
        with pytest.raises(gemma4.InvalidArgumentError):
            s.chat([])
        with pytest.raises(gemma4.InvalidArgumentError):
            s.chat([{"role": "user"}])
        with pytest.raises(gemma4.InvalidArgumentError) as e:
            s.chat([{"role": "wizard", "content": "x"}], stream=False)
        assert "wizard" in e.value.message
        with pytest.raises(TypeError):
            s.step(["a"])


# ---- generation --------------------------------------------------------------------------------

def test_generate_equals_manual_greedy(model):
    for prompt in ("The sea", "Hello world, how are you?"):
        with model.session() as s, model.session() as m:
            text = s.generate(prompt, max_tokens=40, stream=False)
            n_gen = s.info.last_gen_tokens
            ids = m.model.tokenize(prompt, add_bos=True)
            manual = manual_greedy(model, m, ids, 40)
            assert n_gen == len(manual)
            # The stream is the concatenated token bytes (C holds back partial UTF-8), so compare
            # with token_piece; detokenize() follows HF's ByteFallback decoder instead, which
            # turns every byte of an invalid byte-token run into U+FFFD, and agrees only when
            # the random model's bytes happen to be valid UTF-8.
            pieces = b"".join(model.token_piece(t) for t in manual)
            assert text == pieces.decode("utf-8", "replace")
            try:
                pieces.decode("utf-8")
                assert text == model.detokenize(manual)
            except UnicodeDecodeError:
                pass
            assert s.n_past == m.n_past  # both hold prompt + generated tokens
            print("%r -> %d tokens %r" % (prompt, n_gen, text))


def test_streaming_chat_yields_str(model):
    msgs = [{"role": "system", "content": "You are terse."},
            {"role": "user", "content": "Hi there, how are you?"}]
    with model.session() as s:
        gen = s.chat(msgs, max_tokens=24)
        assert iter(gen) is gen  # lazy: nothing runs before the first next()
        assert s.n_past == 0
        pieces = list(gen)
        assert pieces and all(isinstance(p, str) for p in pieces)
        streamed = "".join(pieces)
        ev1 = s.info.n_evaluated
        # a second turn only runs the new tokens (cache reuse)
        msgs2 = msgs + [{"role": "model", "content": streamed}, {"role": "user", "content": "More."}]
        second = s.chat(msgs2, max_tokens=8, stream=False)
        assert isinstance(second, str)
        # (the template strips the reply, so the reused prefix ends where the reply text differs)
        assert s.info.last_prompt_tokens < len(model.tokenize(model.apply_chat_template(msgs2)))
    with model.session() as s:
        assert s.chat(msgs, max_tokens=24, stream=False) == streamed
    # Model.chat keeps its own session
    assert "".join(model.chat(msgs, max_tokens=24)) == streamed


def test_stop_strings(model):
    with model.session() as s:
        full = s.generate("The sea", max_tokens=40, stream=False)
        stop = full[len(full) // 2: len(full) // 2 + 3]
        s.reset()
        cut = s.generate("The sea", max_tokens=40, stream=False, stop=[stop])
        assert cut == full[:full.index(stop)]
        s.reset()
        assert s.generate("The sea", max_tokens=40, stream=False) == full  # stops are per call
        s.reset()
        assert s.generate("The sea", max_tokens=3, stream=False) is not None
        assert s.info.last_gen_tokens == 3


def test_seeded_sampling_reproducible(model):
    kw = dict(max_tokens=24, temperature=1.5, top_k=40, top_p=0.95, stream=False)
    with model.session() as s:
        a = s.generate("Hello world", seed=42, **kw); ta = s.info.last_gen_tokens
        s.reset()
        b = s.generate("Hello world", seed=42, **kw)
        s.reset()
        c = s.generate("Hello world", seed=7, **kw)
        s.reset()
        g = s.generate("Hello world", max_tokens=24, stream=False)  # back to greedy
    assert ta > 0 and a == b and a != c
    with model.session() as s2:
        assert s2.generate("Hello world", max_tokens=24, stream=False) == g
        s2.reset()
        assert s2.generate("Hello world", seed=42, min_p=0.05, repetition_penalty=1.3,
                           **kw) is not None


# ---- cancellation ------------------------------------------------------------------------------

def test_generator_close_mid_stream_leaves_session_usable(model):
    with model.session() as s:
        gen = s.generate("The sea", max_tokens=40)
        first = [next(gen), next(gen)]
        assert all(isinstance(p, str) for p in first)
        gen.close()  # cancels the C call and joins the worker
        assert not s._busy and s._worker is None
        n = s.info.last_gen_tokens
        assert 2 <= n < 40 and s.n_past > 0
        s.reset()
        again = s.generate("The sea", max_tokens=40, stream=False)
    with model.session() as fresh:
        assert again == fresh.generate("The sea", max_tokens=40, stream=False)


def test_keyboard_interrupt_cancels_generation():
    with gemma4.Model.load(E2B, n_ctx=8192, n_threads=N_THREADS) as m, m.session() as s:
        # Ctrl-C while iterating the stream (raised in the main thread after 10 pieces: the tiny
        # model generates 8000 tokens in well under a second, so a timer could come too late)
        pieces = []
        t0 = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            for p in s.generate("The sea", max_tokens=8000):
                pieces.append(p)
                if len(pieces) == 10:
                    _thread.interrupt_main()
        elapsed = time.monotonic() - t0
        assert not s._busy and s._worker is None
        gen = s.info.last_gen_tokens
        print("interrupted after %.2fs, %d tokens" % (elapsed, gen))
        assert 0 < gen < 8000 and s.n_past > 0
        # the session is usable: continue, then start over
        assert isinstance(s.generate(" and", max_tokens=4, stream=False), str)
        s.reset()
        assert s.generate("The sea", max_tokens=5, stream=False) is not None
        # non-streaming generation is interruptible too (from another thread, while it runs)
        timer = threading.Timer(0.03, _thread.interrupt_main)
        timer.start()
        s.reset()
        with pytest.raises(KeyboardInterrupt):
            s.generate("The sea", max_tokens=8000, stream=False)
        timer.join()
        assert not s._busy and 0 < s.info.last_gen_tokens < 8000


def test_keyboard_interrupt_cancels_prefill():
    with gemma4.Model.load(E2B, n_ctx=8192, n_threads=N_THREADS) as m, m.session() as s:
        prompt = list(range(3, 503)) * 12  # 6000 tokens: seconds of prefill on 2 threads
        timer = threading.Timer(0.1, _thread.interrupt_main)
        timer.start()
        t0 = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            s.step(prompt)
        timer.join()
        print("prefill interrupted after %.2fs at n_past %d" % (time.monotonic() - t0, s.n_past))
        assert not s._busy and s.n_past < len(prompt)
        n = s.n_past
        s.step(3)  # the micro-batches already run stay in the context
        assert s.n_past == n + 1


def test_cancel_from_another_thread_raises_cancelled():
    with gemma4.Model.load(E2B, n_ctx=8192, n_threads=N_THREADS) as m, m.session() as s:
        timer = threading.Timer(0.05, s.cancel)
        timer.start()
        with pytest.raises(gemma4.CancelledError) as e:
            s.generate("The sea", max_tokens=8000, stream=False)
        timer.join()
        assert e.value.status == 11 and "cancelled" in e.value.message
        assert s.info.last_gen_tokens < 8000
        assert s.generate(" more", max_tokens=3, stream=False) is not None


def test_session_busy_while_streaming(model):
    with model.session() as s:
        gen = s.generate("The sea", max_tokens=10)
        next(gen)
        with pytest.raises(gemma4.InvalidArgumentError) as e:
            s.step(3)
        assert "busy" in e.value.message
        rest = list(gen)
        assert isinstance(rest, list)
        s.step(3)


def test_close_session_during_stream(model):
    s = model.session()
    gen = s.generate("The sea", max_tokens=40)
    next(gen)
    s.close()  # cancels and joins the worker, then frees
    assert s.closed
    gen.close()
    with pytest.raises(gemma4.InvalidArgumentError):
        s.n_past


# ---- ownership ---------------------------------------------------------------------------------

def test_model_freed_before_session():
    tokens, ref_logits, _ = read_reference("e2b")
    m = gemma4.Model.load(E2B, n_ctx=64, n_threads=N_THREADS)
    s = m.session()
    m.close()
    m.close()  # idempotent
    assert m.closed
    with pytest.raises(gemma4.InvalidArgumentError) as e:
        m.tokenize("x")
    assert "closed" in e.value.message
    logits = s.step(tokens)  # the session keeps the C model alive
    assert np.max(np.abs(logits - ref_logits[-1])) <= REL_TOL * np.max(np.abs(ref_logits[-1]))
    s.close()
    s.close()
    del s, m
    gc.collect()


def test_log_callback():
    got = []
    gemma4.set_log_callback(lambda level, msg: got.append((level, msg)))
    try:
        with gemma4.Model.load(E2B, n_ctx=64, n_threads=N_THREADS):
            pass
    finally:
        gemma4.set_log_callback(None)
    assert all(isinstance(lv, int) and isinstance(msg, str) for lv, msg in got)
    assert gemma4.library_version() == "0.1.0"
    assert gemma4.status_name(7) == "GEMMA4_ERR_CONTEXT_FULL"


def test_no_leak_over_1000_sessions(model):
    def cycle(n):
        for _ in range(n):
            s = model.session(n_ctx=256)  # ~140 KB of KV cache each
            s.step([2, 10, 11])
            s.close()
        for _ in range(n // 10):  # and the __del__ path
            s = model.session(n_ctx=256)
            s.step(2)
            del s

    cycle(100)  # warm up allocator pools
    gc.collect()
    before = rss_bytes()
    cycle(1000)
    gc.collect()
    growth = rss_bytes() - before
    print("RSS growth over 1100 session cycles: %d KiB" % (growth // 1024))
    # one leaked session would be ~140 KB, so 1100 leaks would be ~150 MB
    assert growth < 4 * 1024 * 1024


def test_no_leak_over_model_loads():
    def cycle(n):
        for _ in range(n):
            with gemma4.Model.load(E2B, n_ctx=64, n_threads=N_THREADS) as m:
                m.session().close()

    cycle(5)
    gc.collect()
    before = rss_bytes()
    cycle(50)
    gc.collect()
    growth = rss_bytes() - before
    print("RSS growth over 50 model loads: %d KiB" % (growth // 1024))
    assert growth < 8 * 1024 * 1024  # the weights alone are 1.8 MB per leaked model


def test_memory_budget():
    with gemma4.Model.load(E2B, n_ctx=64) as m:
        weights = m.info.weight_bytes
    gemma4.set_memory_budget(weights - 1)
    try:
        with pytest.raises(gemma4.OutOfMemoryError) as e:
            gemma4.Model.load(E2B, n_ctx=64)
        assert e.value.status == 5 and "memory budget" in e.value.message
    finally:
        gemma4.set_memory_budget(0)
    with gemma4.Model.load(E2B, n_ctx=64) as m:  # loads again once the limit is lifted
        assert m.info.weight_bytes == weights
