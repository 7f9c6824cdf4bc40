// Gemma4Tests.cs: console test program for the C# binding, run with Mono by run_tests.sh.
// The same checks as the Python suite, over the golden fixtures of tests/golden: logits vs
// transformers (1e-4 relative), greedy tokens identical, greedy text, tokenizer round trip,
// every documented error with its status code and message, session precision, streaming
// (foreach, MoveNextAsync, Task), cancellation via CancellationToken leaving the session usable,
// seeded sampling, multi-turn cache reuse per conversation, and 1000 session create/free cycles
// without a leak.
// Usage: mono Gemma4Tests.exe [GOLDEN_DIR]   (default: ../../tests/golden from this file)
// Prints one PASS/FAIL line per test and ends with "N passed, N failed"; exit 1 on failure.
using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Text;
using System.Threading;
using System.Threading.Tasks;
using Gemma4;

static partial class Gemma4Tests
{
    static string golden;
    static int passed, failed;

    static int Main(string[] args)
    {
        golden = args.Length > 0 ? args[0] : Path.Combine("..", "..", "tests", "golden");
        Console.WriteLine("gemma4 {0} (ABI {1}), fixtures {2}", Gemma4Library.Version, Gemma4Library.AbiVersion, golden);
        var tests = new List<KeyValuePair<string, Action>>
        {
            T("version_and_status_names", VersionAndStatusNames),
            T("logits_match_reference_e2b", () => LogitsMatchReference("e2b")),
            T("logits_match_reference_moe", () => LogitsMatchReference("moe")),
            T("load_in_memory_survives_truncation", LoadInMemorySurvivesTruncation),
            T("greedy_tokens_match_reference", GreedyTokensMatchReference),
            T("greedy_text", GreedyText),
            T("tokenize_detokenize_roundtrip", TokenizeRoundTrip),
            T("chat_template", ChatTemplate),
            T("error_bad_path_io", ErrorBadPath),
            T("error_invalid_token", ErrorInvalidToken),
            T("error_context_full", ErrorContextFull),
            T("error_no_tokenizer", ErrorNoTokenizer),
            T("error_buffer_too_small", ErrorBufferTooSmall),
            T("error_invalid_argument", ErrorInvalidArgument),
            T("precision", Precision),
            T("disposed_handles", DisposedHandles),
            T("model_freed_before_session", ModelFreedBeforeSession),
            T("streaming_foreach_async_task", Streaming),
            T("stop_strings_and_callback_stop", Stops),
            T("cancel_token_from_callback", CancelFromCallback),
            T("cancel_token_from_other_thread", CancelFromOtherThread),
            T("cancel_stream_then_continue_chat", CancelStreamThenContinueChat),
            T("seeded_sampling_reproducible", SeededSampling),
            T("multi_turn_cache_reuse", MultiTurnCacheReuse),
            T("conversations_lru", ConversationsLru),
            T("roles_normalize", RolesNormalize),
            T("session_cycles_no_leak", SessionCyclesNoLeak),
            T("json_write_parse", JsonWriteParse),
            T("chat_tool_call_round_trip", ChatToolCallRoundTrip),
            T("chat_stream_events", ChatStreamEvents),
            T("chat_render_matches_transformers", ChatRenderMatchesTransformers),
            T("adapter_messages", AdapterMessages),
            T("adapter_options_and_tool_mode", AdapterOptionsAndToolMode),
            T("adapter_result_contents", AdapterResultContents),
        };
        foreach (var t in tests)
        {
            try
            {
                t.Value();
                passed++;
                Console.WriteLine("PASS {0}", t.Key);
            }
            catch (Exception e)
            {
                failed++;
                Console.WriteLine("FAIL {0}: {1}", t.Key, e);
            }
        }
        Console.WriteLine("{0} passed, {1} failed", passed, failed);
        return failed == 0 ? 0 : 1;
    }

    static KeyValuePair<string, Action> T(string name, Action a) { return new KeyValuePair<string, Action>(name, a); }

    // ---- helpers

    class TestFailure : Exception { public TestFailure(string m) : base(m) { } }

    static void Assert(bool cond, string what)
    {
        if (!cond) throw new TestFailure(what);
    }

    static void Equal<TV>(TV expected, TV actual, string what)
    {
        if (!EqualityComparer<TV>.Default.Equals(expected, actual))
            throw new TestFailure(what + ": expected <" + expected + ">, got <" + actual + ">");
    }

    // Runs f, which must throw Gemma4Exception with this status and a message containing substr.
    static Gemma4Exception Throws(Gemma4Status status, string substr, Action f)
    {
        try { f(); }
        catch (Gemma4Exception e)
        {
            Console.WriteLine("    {0} ({1}): {2}", e.Status, e.Code, e.NativeMessage);
            Equal(status, e.Status, "status");
            Assert(e.NativeMessage.Contains(substr), "message '" + e.NativeMessage + "' lacks '" + substr + "'");
            Assert(e.Message.Contains(Gemma4Library.StatusName((int)status)), "Message names the status");
            return e;
        }
        throw new TestFailure("expected Gemma4Exception " + status + ", nothing thrown");
    }

    static void ThrowsCancelled(Action f)
    {
        try { f(); }
        catch (OperationCanceledException) { return; }
        catch (AggregateException e) when (e.InnerException is OperationCanceledException) { return; }
        throw new TestFailure("expected OperationCanceledException");
    }

    static Gemma4Model Load(string fixture, long nCtx)
    {
        return Gemma4Model.Load(Path.Combine(golden, fixture), nCtx, 2);
    }

    sealed class Reference
    {
        public int[] Tokens;
        public int Vocab;
        public float[] Logits; // (n_tokens, vocab)
        public int[] Gen;
    }

    static Reference ReadReference(string fixture)
    {
        using (var r = new BinaryReader(File.OpenRead(Path.Combine(golden, fixture, "reference.bin"))))
        {
            string magic = Encoding.ASCII.GetString(r.ReadBytes(8));
            Assert(magic.StartsWith("G4REF1"), "reference.bin magic");
            var re = new Reference();
            int n = r.ReadInt32();
            re.Vocab = r.ReadInt32();
            re.Tokens = new int[n];
            for (int i = 0; i < n; i++) re.Tokens[i] = r.ReadInt32();
            re.Logits = new float[n * re.Vocab];
            for (int i = 0; i < re.Logits.Length; i++) re.Logits[i] = r.ReadSingle();
            int g = r.ReadInt32();
            re.Gen = new int[g];
            for (int i = 0; i < g; i++) re.Gen[i] = r.ReadInt32();
            return re;
        }
    }

    // max |got - ref| / max |ref| over all values, as tests/harness.c g4_compare_rel
    static double CompareRel(float[] got, float[] reference, string what)
    {
        double maxRef = 0, maxDiff = 0;
        for (int i = 0; i < got.Length; i++)
        {
            maxRef = Math.Max(maxRef, Math.Abs(reference[i]));
            double d = Math.Abs((double)got[i] - reference[i]);
            if (!(d <= maxDiff)) maxDiff = d;
        }
        double rel = maxRef > 0 ? maxDiff / maxRef : maxDiff;
        Console.WriteLine("    {0}: n={1} max|diff|={2:E3} max|ref|={3:E3} rel={4:E3}", what, got.Length, maxDiff, maxRef, rel);
        return rel;
    }

    static readonly string[] AllFixtures = { "e2b", "moe", "dense31b", "multimodal" };

    // ---- tests

    static void VersionAndStatusNames()
    {
        Assert(System.Text.RegularExpressions.Regex.IsMatch(Gemma4Library.Version, @"^\d+\.\d+\.\d+$"), "version x.y.z");
        Equal(Gemma4Library.BindingAbiVersion, Gemma4Library.AbiVersion, "ABI version");
        Equal("GEMMA4_ERR_CONTEXT_FULL", Gemma4Library.StatusName(7), "status name 7");
        Equal("GEMMA4_ERR_UNKNOWN", Gemma4Library.StatusName(9999), "unknown status name");
    }

    // Token by token, so every row of the reference (not only the last) is compared.
    static void LoadInMemorySurvivesTruncation()
    {
        string dir = Path.Combine(Path.GetTempPath(), "g4cs_inmem_" + Guid.NewGuid().ToString("N"));
        Directory.CreateDirectory(dir);
        try
        {
            foreach (string f in new[] { "config.json", "model.safetensors" })
                File.Copy(Path.Combine(golden, "e2b", f), Path.Combine(dir, f));
            Reference re = ReadReference("e2b");
            using (Gemma4Model m = Gemma4Model.Load(dir, 64, 2, inMemory: true))
            {
                using (var fs = new FileStream(Path.Combine(dir, "model.safetensors"), FileMode.Truncate)) { }
                using (Gemma4Session s = m.CreateSession())
                {
                    int V = re.Vocab;
                    var tokens = new int[] { re.Tokens[0], re.Tokens[1], re.Tokens[2], re.Tokens[3] };
                    float[] last = s.StepLogits(tokens);
                    var refRow = new float[V];
                    Array.Copy(re.Logits, 3 * V, refRow, 0, V);
                    Assert(CompareRel(last, refRow, "in-memory load after truncation") <= 1e-4, "logits within 1e-4");
                }
            }
        }
        finally { Directory.Delete(dir, true); }
    }

    static void LogitsMatchReference(string fixture)
    {
        Reference re = ReadReference(fixture);
        using (Gemma4Model m = Load(fixture, 128))
        using (Gemma4Session s = m.CreateSession())
        {
            Equal(re.Vocab, s.VocabSize, "vocab");
            int T = re.Tokens.Length, V = re.Vocab;
            var all = new float[T * V];
            var row = new float[V];
            for (int t = 0; t < T; t++)
            {
                s.Step(re.Tokens, t, 1, row);
                Array.Copy(row, 0, all, t * V, V);
            }
            Assert(CompareRel(all, re.Logits, fixture + " logits, token by token") <= 1e-4, "logits within 1e-4 relative");
            // one prefill: its last row equals the reference's last row
            s.Reset();
            float[] last = s.StepLogits(re.Tokens);
            var refLast = new float[V];
            Array.Copy(re.Logits, (T - 1) * V, refLast, 0, V);
            Assert(CompareRel(last, refLast, fixture + " logits, prefill last row") <= 1e-4, "prefill logits within 1e-4");
        }
    }

    static void GreedyTokensMatchReference()
    {
        foreach (string fixture in AllFixtures)
        {
            Reference re = ReadReference(fixture);
            using (Gemma4Model m = Load(fixture, 128))
            using (Gemma4Session s = m.CreateSession())
            {
                s.Step(re.Tokens);
                int same = 0;
                for (int i = 0; i < re.Gen.Length; i++)
                {
                    int tok = s.Sample();
                    if (tok != re.Gen[i]) break;
                    same++;
                    s.Step(new[] { tok });
                }
                Console.WriteLine("    {0}: {1} / {2} greedy tokens identical to transformers", fixture, same, re.Gen.Length);
                Equal(re.Gen.Length, same, fixture + " greedy tokens");
            }
        }
    }

    static void GreedyText()
    {
        using (Gemma4Model m = Load("e2b", 512))
        using (Gemma4Session s = m.CreateSession())
        {
            var pieces = new List<string>();
            Gemma4Result a = s.Generate("The sea", 40, p => { pieces.Add(p); return true; });
            Console.WriteLine("    greedy text ({0} tokens): \"{1}\"", a.GeneratedTokens, a.Text);
            Assert(a.Text.Length >= 8, "some text");
            Equal(a.Text, string.Concat(pieces), "pieces concatenate to the text");
            Equal(a.Tokens.Length, a.GeneratedTokens, "one callback token per generated token");
            // The stream carries each token's raw bytes (this random-weight model emits stray
            // byte-fallback tokens, which decode to U+FFFD here); detokenize follows Hugging Face,
            // which replaces every byte of an invalid run, so compare with the raw pieces.
            var raw = new List<byte>();
            foreach (int t in a.Tokens) raw.AddRange(m.TokenPiece(t));
            Equal(Encoding.UTF8.GetString(raw.ToArray()), a.Text, "text == UTF-8 of the tokens' pieces");
            Assert(!a.Text.Contains("\uFFFD") || m.Detokenize(a.Tokens).Contains("\uFFFD"), "replacement chars agree");
            s.Reset();
            Gemma4Result b = s.Generate("The sea", 40);
            Equal(a.Text, b.Text, "greedy text deterministic");
            // the same continuation through Step/Sample
            s.Reset();
            s.Step(m.Tokenize("The sea", true));
            var toks = new List<int>();
            for (int i = 0; i < a.Tokens.Length; i++)
            {
                int t = s.Sample();
                toks.Add(t);
                s.Step(new[] { t });
            }
            Equal(string.Join(",", a.Tokens), string.Join(",", toks), "generate == step/sample loop");
            s.Reset();
            Gemma4Result three = s.Generate("The sea", 3);
            Equal(3, three.GeneratedTokens, "max tokens");
            Equal(Gemma4FinishReason.Length, three.FinishReason, "finish reason length");
        }
    }

    static void TokenizeRoundTrip()
    {
        using (Gemma4Model m = Load("e2b", 64))
        {
            const string text = "Hello <|turn>user\nwörld 🙂";
            int[] ids = m.Tokenize(text, true);
            Equal(2, ids[0], "BOS first");
            Equal(m.BosId, ids[0], "BosId");
            Assert(m.EndOfTurnId > 0, "end-of-turn id");
            Equal(text, m.Detokenize(ids.Skip(1).ToList()), "round trip");
            Equal("<bos>" + text, m.Detokenize(ids), "round trip with BOS (special kept)");
            Assert(!m.Detokenize(ids, true).Contains("<|turn>"), "skip special drops control tokens");
            int[] noBos = m.Tokenize(text);
            Equal(ids.Length - 1, noBos.Length, "no BOS without flag");
            var buf = new int[64];
            Equal(noBos.Length, m.Tokenize(text, buf), "tokenize into caller buffer");
            Equal("", m.Detokenize(new int[0]), "empty detokenize");
            Equal(0, m.Tokenize("").Length, "empty tokenize");
            var sb = new List<byte>();
            foreach (int id in noBos) sb.AddRange(m.TokenPiece(id));
            Equal(text, Encoding.UTF8.GetString(sb.ToArray()), "token pieces concatenate");
            Equal("custom", m.Variant, "variant");
        }
    }

    static void ChatTemplate()
    {
        using (Gemma4Model m = Load("e2b", 64))
        {
            var msgs = new[] { Gemma4Message.System("Be terse."), Gemma4Message.User("Hi") };
            string p = m.ApplyChatTemplate(msgs);
            Console.WriteLine("    rendered: {0}", p.Replace("\n", "\\n"));
            Assert(p.StartsWith("<bos>"), "starts with <bos>");
            Assert(p.Contains("<|turn>user\nHi<turn|>"), "user turn");
            Assert(p.EndsWith("<|turn>model\n"), "generation prompt");
            Assert(!m.ApplyChatTemplate(msgs, false).EndsWith("<|turn>model\n"), "no generation prompt");
            Throws(Gemma4Status.InvalidArgument, "role", () => m.ApplyChatTemplate(new[] { new Gemma4Message("wizard", "x") }));
            Throws(Gemma4Status.InvalidArgument, "", () => m.ApplyChatTemplate(new Gemma4Message[0]));
        }
    }

    static void ErrorBadPath()
    {
        Throws(Gemma4Status.IO, "/nonexistent/model", () => Gemma4Model.Load("/nonexistent/model"));
        Throws(Gemma4Status.IO, "config.json", () => Gemma4Model.Load(Path.GetDirectoryName(Path.GetFullPath(golden))));
        Throws(Gemma4Status.InvalidArgument, "device 7", () => Gemma4Model.Load("/x", 0, 0, (Gemma4Device)7));
        try { Gemma4Model.Load(null); throw new TestFailure("null path accepted"); }
        catch (ArgumentNullException) { }
    }

    static void ErrorInvalidToken()
    {
        using (Gemma4Model m = Load("e2b", 16))
        using (Gemma4Session s = m.CreateSession())
        {
            Throws(Gemma4Status.InvalidToken, "512", () => s.Step(new[] { 5, 512 }));
            Throws(Gemma4Status.InvalidToken, "-1", () => s.Step(new[] { 5, -1 }));
            Throws(Gemma4Status.InvalidToken, "9999", () => m.Detokenize(new[] { 9999 }));
            Equal(10, (int)Gemma4Status.InvalidToken, "code 10");
            Equal(0L, s.NPast, "nothing ran");
        }
    }

    static void ErrorContextFull()
    {
        using (Gemma4Model m = Load("e2b", 16))
        using (Gemma4Session s = m.CreateSession())
        {
            int[] toks = Enumerable.Range(0, 17).Select(i => i == 0 ? 2 : 9 + i).ToArray();
            Throws(Gemma4Status.ContextFull, "context of 16", () => s.Step(toks));
            Equal(0L, s.NPast, "nothing ran");
            s.Step(toks, 0, 16, null);
            Throws(Gemma4Status.ContextFull, "position 16", () => s.Step(new[] { 5 }));
            Equal(7, (int)Gemma4Status.ContextFull, "code 7");
            using (Gemma4Session small = m.CreateSession(4))
            {
                Throws(Gemma4Status.ContextFull, "", () => small.Generate("a b c d e f g h i j", 5));
                Equal(0L, small.NPast, "a prompt that does not fit runs nothing");
            }
        }
    }

    static void ErrorNoTokenizer()
    {
        using (Gemma4Model m = Load("moe", 64))
        using (Gemma4Session s = m.CreateSession())
        {
            Throws(Gemma4Status.NoTokenizer, "tokenizer", () => m.Tokenize("x"));
            Throws(Gemma4Status.NoTokenizer, "tokenizer", () => m.Detokenize(new[] { 5 }));
            Throws(Gemma4Status.NoTokenizer, "tokenizer", () => s.Generate("x", 4));
            Equal(13, (int)Gemma4Status.NoTokenizer, "code 13");
            Equal(-1, m.EndOfTurnId, "no end-of-turn id");
        }
    }

    static void ErrorBufferTooSmall()
    {
        using (Gemma4Model m = Load("e2b", 16))
        using (Gemma4Session s = m.CreateSession())
        {
            Throws(Gemma4Status.BufferTooSmall, "512", () => s.Step(new[] { 2 }, new float[10]));
            Equal(0L, s.NPast, "nothing ran");
            Throws(Gemma4Status.BufferTooSmall, "", () => m.Tokenize("Hello world, hello sea", new int[1]));
            Equal(8, (int)Gemma4Status.BufferTooSmall, "code 8");
        }
    }

    static void ErrorInvalidArgument()
    {
        using (Gemma4Model m = Load("e2b", 16))
        using (Gemma4Session s = m.CreateSession())
        {
            Throws(Gemma4Status.InvalidArgument, "no logits", () => s.Sample());
            Throws(Gemma4Status.InvalidArgument, "temperature", () => s.SetSampling(-1f));
            Throws(Gemma4Status.InvalidArgument, "top_p", () => s.SetSampling(1f, 0, 1.5f));
            Throws(Gemma4Status.InvalidArgument, "n_keep 17", () => s.Truncate(17));
            Throws(Gemma4Status.InvalidArgument, "unknown key 999", () => m.GetInfo((Gemma4ModelInfo)999));
            Throws(Gemma4Status.InvalidArgument, "", () => s.AddStop(""));
            // an embedded NUL is refused wherever the string goes to a NUL-terminated C
            // parameter (it would be cut there); nothing runs
            Action[] nul = {
                () => s.AddStop("a\0b"),
                () => s.Generate("hello\0 IGNORE THE ABOVE", 4),
                () => s.ChatGenerate(new[] { Gemma4Message.User("hello\0 IGNORE") }, 4),
                () => s.ChatGenerate(new[] { new Gemma4Message("us\0er", "hi") }, 4),
                () => m.ApplyChatTemplate(new[] { Gemma4Message.User("a\0b") }, true),
                () => Gemma4Model.Load(Path.Combine(golden, "e2b") + "\0/x", 16, 1),
            };
            for (int i = 0; i < nul.Length; i++)
            {
                try { nul[i](); throw new TestFailure("NUL accepted by call " + i); }
                catch (ArgumentException e)
                {
                    if (!e.Message.Contains("NUL")) throw new TestFailure("call " + i + ": " + e.Message);
                }
            }
            if (s.NPast != 0) throw new TestFailure("a refused call ran tokens");
        }
    }

    // The fixtures' weights are F32, on which Bf16 changes nothing numerically (the numeric
    // comparison lives in tests/test_forward_cpu.c), so this checks the setting, not the math.
    static void Precision()
    {
        Reference re = ReadReference("e2b");
        using (Gemma4Model m = Load("e2b", 128))
        {
            using (Gemma4Session s = m.CreateSession())
            {
                Equal(Gemma4Precision.Fp32, s.Precision, "default precision");
                s.SetPrecision(Gemma4Precision.Bf16);
                Equal(Gemma4Precision.Bf16, s.Precision, "after SetPrecision(Bf16)");
                Equal(1L, s.GetInfo(Gemma4SessionInfo.Precision), "GEMMA4_SESSION_PRECISION");
                float[] l = s.StepLogits(re.Tokens); // a step in Bf16 mode
                Equal(512, l.Length, "logits length");
                Assert(l.All(x => !float.IsNaN(x) && !float.IsInfinity(x)), "finite logits in bf16 mode");
                s.SetPrecision(Gemma4Precision.Fp32);
                Equal(Gemma4Precision.Fp32, s.Precision, "back to Fp32");
                Equal((long)re.Tokens.Length, s.NPast, "the cache is kept");
                s.SetPrecision(Gemma4Precision.Bf16);
                Gemma4Result r = s.Generate(" and", 4);
                Assert(r.GeneratedTokens > 0, "generate in bf16 mode");
                Throws(Gemma4Status.InvalidArgument, "unknown precision 7", () => s.SetPrecision((Gemma4Precision)7));
                Throws(Gemma4Status.InvalidArgument, "unknown precision -1", () => s.SetPrecision((Gemma4Precision)(-1)));
                Equal(Gemma4Precision.Bf16, s.Precision, "a failed call changes nothing");
            }
            using (Gemma4Session s = m.CreateSession(64, Gemma4Precision.Bf16))
            {
                Equal(Gemma4Precision.Bf16, s.Precision, "CreateSession(nCtx, Bf16)");
                Equal(64L, s.NCtx, "CreateSession(nCtx, Bf16) n_ctx");
            }
            Throws(Gemma4Status.InvalidArgument, "unknown precision 5", () => m.CreateSession(0, (Gemma4Precision)5));
            var hi = new[] { Gemma4Message.User("Hi") };
            var o = new Gemma4GenerationOptions { MaxTokens = 4 };
            using (var chat = new Gemma4ChatSession(m, 128, 2, Gemma4Precision.Bf16))
            {
                Equal(Gemma4Precision.Bf16, chat.Precision, "ChatSession.Precision");
                Assert(chat.Complete("a", hi, o).GeneratedTokens > 0, "chat in bf16 mode");
                Equal(1L, chat.GetSessionInfo("a", Gemma4SessionInfo.Precision), "conversation session is bf16");
            }
            using (var chat = new Gemma4ChatSession(m, 128))
            {
                chat.Complete("a", hi, o);
                Equal(0L, chat.GetSessionInfo("a", Gemma4SessionInfo.Precision), "ChatSession default fp32");
            }
            using (var chat = new Gemma4ChatSession(m, 128, 2, (Gemma4Precision)9))
                Throws(Gemma4Status.InvalidArgument, "unknown precision 9", () => chat.Complete("a", hi, o));
        }
    }

    static void DisposedHandles()
    {
        Gemma4Model m = Load("e2b", 16);
        Gemma4Session s = m.CreateSession();
        s.Dispose();
        s.Dispose(); // twice is fine
        Assert(s.IsDisposed, "IsDisposed");
        try { s.Step(new[] { 2 }); throw new TestFailure("step on a disposed session"); }
        catch (ObjectDisposedException) { }
        Assert(!s.Cancel(), "cancel on disposed session returns false");
        m.Dispose();
        m.Dispose();
        try { m.Tokenize("x"); throw new TestFailure("tokenize on a disposed model"); }
        catch (ObjectDisposedException) { }
    }

    static void ModelFreedBeforeSession()
    {
        Gemma4Model m = Load("e2b", 64);
        Gemma4Session s = m.CreateSession();
        int[] prompt = m.Tokenize("The sea", true);
        m.Dispose(); // the session keeps the weights alive
        float[] l = s.StepLogits(prompt);
        Equal(512, l.Length, "logits after model free");
        Assert(s.Sample() >= 0, "sample after model free");
        s.Dispose();
    }

    static void Streaming()
    {
        using (Gemma4Model m = Load("e2b", 512))
        using (Gemma4Session s = m.CreateSession())
        {
            string expected = s.Generate("The sea", 24).Text;
            // foreach
            s.Reset();
            var sb = new StringBuilder();
            int n = 0;
            Gemma4TokenStream st = s.GenerateStream("The sea", 24);
            foreach (string piece in st) { sb.Append(piece); n++; }
            Equal(expected, sb.ToString(), "foreach stream text");
            Assert(n > 1, "more than one piece");
            Equal(expected, st.Result.Text, "stream result");
            // MoveNextAsync
            s.Reset();
            string viaAsync = ConsumeAsync(s.GenerateStream("The sea", 24)).GetAwaiter().GetResult();
            Equal(expected, viaAsync, "MoveNextAsync text");
            // IAsyncEnumerable<string> (what `await foreach` calls)
            s.Reset();
            Equal(expected, ConsumeAsyncEnumerable(s.GenerateStreamAsync("The sea", 24), 0).GetAwaiter().GetResult(),
                  "IAsyncEnumerable text");
            // leaving early (DisposeAsync) cancels the rest; the session is free again
            s.Reset();
            string firstTwo = ConsumeAsyncEnumerable(s.GenerateStreamAsync("The sea", 24), 2).GetAwaiter().GetResult();
            Assert(expected.StartsWith(firstTwo) && firstTwo.Length > 0, "IAsyncEnumerable early exit is a prefix");
            s.Reset();
            Equal(expected, s.Generate("The sea", 24).Text, "session usable after an early DisposeAsync");
            // Task with progress callback
            s.Reset();
            var sb2 = new StringBuilder();
            Gemma4Result r = s.GenerateAsync("The sea", 24, p => sb2.Append(p)).Result;
            Equal(expected, r.Text, "GenerateAsync text");
            Equal(expected, sb2.ToString(), "GenerateAsync pieces");
            // chat streaming
            using (var chat = new Gemma4ChatSession(m, 512))
            {
                var msgs = new[] { Gemma4Message.User("Why is the sea blue?") };
                var opt = new Gemma4GenerationOptions { MaxTokens = 16 };
                string full = chat.Complete("x", msgs, opt).Text;
                chat.Forget("x");
                Equal(full, ConsumeAsyncEnumerable(chat.StreamAsync("x", msgs, opt), 0).GetAwaiter().GetResult(),
                      "chat StreamAsync text");
                chat.Forget("x");
                var sb3 = new StringBuilder();
                using (Gemma4TokenStream cs = chat.Stream("x", msgs, opt))
                    foreach (string piece in cs) sb3.Append(piece);
                Equal(full, sb3.ToString(), "chat stream text");
                chat.Forget("x");
                Equal(full, chat.CompleteAsync("x", msgs, opt).Result.Text, "chat CompleteAsync text");
            }
            // a stream used concurrently with a direct call: the direct call is refused
            s.Reset();
            using (Gemma4TokenStream busy = s.GenerateStream("The sea", 200))
            {
                Assert(busy.MoveNext(), "first piece");
                try { s.Step(new[] { 5 }); throw new TestFailure("concurrent use accepted"); }
                catch (InvalidOperationException) { }
            } // Dispose cancels the rest and waits
            s.Reset();
            Equal(expected, s.Generate("The sea", 24).Text, "session usable after disposing a running stream");
        }
    }

    // What `await foreach` does (C# 8 syntax is not available to mcs); maxPieces 0: all.
    static async Task<string> ConsumeAsyncEnumerable(IAsyncEnumerable<string> stream, int maxPieces)
    {
        var sb = new StringBuilder();
        IAsyncEnumerator<string> e = stream.GetAsyncEnumerator();
        try
        {
            for (int n = 0; (maxPieces == 0 || n < maxPieces) && await e.MoveNextAsync().ConfigureAwait(false); n++)
                sb.Append(e.Current);
        }
        finally { await e.DisposeAsync().ConfigureAwait(false); }
        return sb.ToString();
    }

    static async Task<string> ConsumeAsync(Gemma4TokenStream stream)
    {
        var sb = new StringBuilder();
        using (stream)
            while (await stream.MoveNextAsync().ConfigureAwait(false)) sb.Append(stream.Current);
        return sb.ToString();
    }

    static void Stops()
    {
        using (Gemma4Model m = Load("e2b", 512))
        using (Gemma4Session s = m.CreateSession())
        {
            string full = s.Generate("The sea", 40).Text;
            string stop = full.Substring(full.Length / 2, 3);
            int at = full.IndexOf(stop, StringComparison.Ordinal);
            s.Reset();
            s.Configure(new Gemma4GenerationOptions { Stop = new[] { stop } });
            string cut = s.Generate("The sea", 40).Text;
            Console.WriteLine("    stop \"{0}\" -> \"{1}\"", stop, cut);
            Equal(full.Substring(0, at), cut, "text before the stop string");
            s.Reset();
            s.Configure(new Gemma4GenerationOptions());
            int count = 0;
            Gemma4Result r = s.Generate("The sea", 40, p => ++count < 2);
            Assert(r.StoppedByCallback, "stopped by callback");
            Equal(Gemma4FinishReason.Stop, r.FinishReason, "finish reason stop");
            Equal(2, r.GeneratedTokens, "two tokens");
            // an exception in the callback surfaces from Generate, and the session stays usable
            s.Reset();
            try { s.Generate("The sea", 40, p => { throw new FormatException("boom"); }); throw new TestFailure("no exception"); }
            catch (FormatException e) { Equal("boom", e.Message, "callback exception"); }
            s.Reset();
            Equal(full, s.Generate("The sea", 40).Text, "usable after callback exception");
        }
    }

    static void CancelFromCallback()
    {
        using (Gemma4Model m = Load("e2b", 512))
        using (Gemma4Session s = m.CreateSession())
        {
            string full = s.Generate("The sea", 40).Text;
            s.Reset();
            using (var cts = new CancellationTokenSource())
            {
                int n = 0;
                ThrowsCancelled(() => s.Generate("The sea", 40, p => { if (++n == 2) cts.Cancel(); return true; }, cts.Token));
                Equal(2, n, "stopped at the next token");
                long past = s.NPast;
                Assert(past > 0 && past < 40, "tokens already run stay in the context");
                // a cancelled token refuses to start
                ThrowsCancelled(() => s.Generate("x", 4, null, cts.Token));
                Equal(past, s.NPast, "pre-cancelled generate ran nothing");
            }
            s.Reset();
            Equal(full, s.Generate("The sea", 40).Text, "usable after cancellation");
        }
    }

    static void CancelFromOtherThread()
    {
        using (Gemma4Model m = Load("e2b", 8192))
        using (Gemma4Session s = m.CreateSession())
        using (var cts = new CancellationTokenSource())
        {
            cts.CancelAfter(30);
            var sw = System.Diagnostics.Stopwatch.StartNew();
            ThrowsCancelled(() => s.Generate("The sea", 8000, null, cts.Token));
            long gen = s.GetInfo(Gemma4SessionInfo.LastGenTokens);
            Console.WriteLine("    cancelled after {0} tokens, {1} ms", gen, sw.ElapsedMilliseconds);
            Assert(gen < 8000, "stopped early");
            // Task-based API with a token
            var cts2 = new CancellationTokenSource();
            s.Reset();
            Task<Gemma4Result> t = s.GenerateAsync("The sea", 8000, null, cts2.Token);
            Thread.Sleep(20);
            cts2.Cancel();
            ThrowsCancelled(() => t.Wait());
            Assert(t.IsCanceled || t.IsFaulted, "task ended cancelled");
            s.Reset();
            Gemma4Result r = s.Generate("The sea", 8);
            Equal(8, r.GeneratedTokens, "usable after cancel from another thread");
        }
    }

    static void CancelStreamThenContinueChat()
    {
        using (Gemma4Model m = Load("e2b", 1024))
        using (var chat = new Gemma4ChatSession(m, 1024))
        using (var fresh = new Gemma4ChatSession(m, 1024))
        {
            var turn1 = new List<Gemma4Message> { Gemma4Message.User("Tell me about the sea.") };
            var opt = new Gemma4GenerationOptions { MaxTokens = 200 };
            using (var cts = new CancellationTokenSource())
            {
                Gemma4TokenStream st = chat.Stream("c", turn1, opt, cts.Token);
                int n = 0;
                ThrowsCancelled(() =>
                {
                    while (st.MoveNext()) { if (++n == 3) cts.Cancel(); }
                });
                st.Dispose();
                Assert(n >= 3, "pieces before cancel");
            }
            // MoveNextAsync with its own token
            using (var cts = new CancellationTokenSource())
            {
                Gemma4TokenStream st = chat.Stream("c", turn1, opt);
                ThrowsCancelled(() =>
                {
                    Task.Run(async () =>
                    {
                        int k = 0;
                        while (await st.MoveNextAsync(cts.Token)) { if (++k == 2) cts.Cancel(); }
                    }).GetAwaiter().GetResult();
                });
                st.Dispose();
            }
            // the conversation continues: same reply as a fresh conversation would give
            var small = new Gemma4GenerationOptions { MaxTokens = 12 };
            string a = chat.Complete("c", turn1, small).Text;
            string b = fresh.Complete("c", turn1, small).Text;
            Equal(b, a, "reply after cancelled streams equals a fresh conversation's");
        }
    }

    static void SeededSampling()
    {
        using (Gemma4Model m = Load("e2b", 256))
        using (Gemma4Session s = m.CreateSession())
        {
            Func<ulong, Gemma4Result> run = seed =>
            {
                s.Reset();
                s.Configure(new Gemma4GenerationOptions { Temperature = 1.5f, TopK = 40, TopP = 0.95f, Seed = seed });
                return s.Generate("Hello world", 24);
            };
            Gemma4Result a = run(42), b = run(42), c = run(7);
            Console.WriteLine("    seed 42: {0} tokens, again: {1}, seed 7: {2}", a.GeneratedTokens, b.GeneratedTokens, c.GeneratedTokens);
            Assert(a.GeneratedTokens > 0, "tokens generated");
            Equal(string.Join(",", a.Tokens), string.Join(",", b.Tokens), "same seed, same tokens");
            Equal(a.Text, b.Text, "same seed, same text");
            Assert(string.Join(",", a.Tokens) != string.Join(",", c.Tokens), "another seed differs");
            // chat API: options carry the seed
            using (var chat = new Gemma4ChatSession(m, 256))
            {
                var msgs = new[] { Gemma4Message.User("Hello") };
                var o = new Gemma4GenerationOptions { Temperature = 1.2f, Seed = 3, MaxTokens = 16 };
                string x = chat.Complete("a", msgs, o).Text, y = chat.Complete("b", msgs, o).Text;
                Equal(x, y, "seeded chat reproducible across conversations");
                Equal(x, chat.Complete("a", msgs, o).Text, "seeded chat reproducible on the same conversation");
            }
        }
    }

    static void MultiTurnCacheReuse()
    {
        using (Gemma4Model m = Load("e2b", 512))
        using (var chat = new Gemma4ChatSession(m, 512))
        {
            var all = new[]
            {
                Gemma4Message.System("You are terse."), Gemma4Message.User("Hi there, how are you?"),
                Gemma4Message.Model("Fine, thanks."), Gemma4Message.User("Tell me more."),
            };
            var none = new Gemma4GenerationOptions { MaxTokens = 0 };
            chat.Complete("a", all.Take(2).ToList(), none);
            int n1 = m.Tokenize(m.ApplyChatTemplate(all.Take(2).ToList())).Length;
            int n2 = m.Tokenize(m.ApplyChatTemplate(all)).Length;
            long ev1 = chat.GetSessionInfo("a", Gemma4SessionInfo.NEvaluated);
            Equal((long)n1, ev1, "turn 1 runs the rendered conversation");
            // another conversation in between does not disturb "a"
            chat.Complete("b", new[] { Gemma4Message.User("Something else entirely.") }, none);
            chat.Complete("a", all, none);
            long ev2 = chat.GetSessionInfo("a", Gemma4SessionInfo.NEvaluated);
            Console.WriteLine("    turn 1: {0} tokens run; turn 2: {1} new of {2} rendered", ev1, ev2 - ev1, n2);
            Equal((long)(n2 - n1), ev2 - ev1, "turn 2 runs only the new tokens");
            // same next token as a fresh session on the full conversation
            var o = new Gemma4GenerationOptions { MaxTokens = 8 };
            string reused = chat.Complete("a", all, o).Text;
            using (var fresh = new Gemma4ChatSession(m, 512))
                Equal(fresh.Complete("z", all, o).Text, reused, "reply equals a fresh session's");
            // an edited earlier message rewinds instead of appending
            var edited = all.ToList();
            edited[1] = Gemma4Message.User("Hello, how are you?");
            string e1 = chat.Complete("a", edited, o).Text;
            using (var fresh = new Gemma4ChatSession(m, 512))
                Equal(fresh.Complete("z", edited, o).Text, e1, "edited history equals a fresh session's");
        }
    }

    static void ConversationsLru()
    {
        using (Gemma4Model m = Load("e2b", 256))
        using (var chat = new Gemma4ChatSession(m, 256, 2))
        {
            var msgs = new[] { Gemma4Message.User("Hi") };
            var none = new Gemma4GenerationOptions { MaxTokens = 0 };
            chat.Complete("a", msgs, none);
            chat.Complete("b", msgs, none);
            chat.Complete("a", msgs, none); // a is now most recent
            chat.Complete("c", msgs, none); // evicts b
            Equal(2, chat.Count, "bounded");
            Assert(chat.Contains("a") && chat.Contains("c") && !chat.Contains("b"), "least recently used evicted");
            Assert(chat.Forget("a") && !chat.Contains("a"), "forget");
            chat.Complete(null, msgs, none);
            Assert(chat.Contains(Gemma4ChatSession.DefaultConversation), "null key = default conversation");
            // parallel conversations on different keys
            var tasks = new[] { "p", "q" }.Select(k => chat.CompleteAsync(k, msgs, new Gemma4GenerationOptions { MaxTokens = 8 })).ToArray();
            Task.WaitAll(tasks);
            Equal(tasks[0].Result.Text, tasks[1].Result.Text, "parallel conversations agree");
        }
    }

    static void RolesNormalize()
    {
        Equal("model", Gemma4Roles.Normalize("assistant"), "assistant -> model");
        Equal("model", Gemma4Roles.Normalize("Model"), "model");
        Equal("user", Gemma4Roles.Normalize("user"), "user");
        Equal("system", Gemma4Roles.Normalize("system"), "system");
        try { Gemma4Roles.Normalize("tool"); throw new TestFailure("tool accepted"); }
        catch (ArgumentException) { }
    }

    static long RssKb()
    {
        foreach (string line in File.ReadAllLines("/proc/self/status"))
            if (line.StartsWith("VmRSS:"))
                return long.Parse(line.Substring(6).Trim().Split(' ')[0]);
        return -1;
    }

    // Separate method so no stack slot of the caller keeps a session reachable.
    static void MakeUndisposedSessions(Gemma4Model m, int[] toks, WeakReference[] weak)
    {
        for (int i = 0; i < weak.Length; i++)
        {
            Gemma4Session s = m.CreateSession();
            s.Step(toks);
            weak[i] = new WeakReference(s);
        }
    }

    static void SessionCyclesNoLeak()
    {
        using (Gemma4Model m = Load("e2b", 64))
        {
            int[] toks = { 2, 10, 11 };
            long kv;
            using (Gemma4Session s = m.CreateSession()) kv = s.GetInfo(Gemma4SessionInfo.KvBytes);
            Action cycles = () =>
            {
                for (int i = 0; i < 1000; i++)
                    using (Gemma4Session s = m.CreateSession())
                        s.Step(toks);
            };
            cycles(); // warm up the allocator and the JIT
            GC.Collect();
            GC.WaitForPendingFinalizers();
            long before = RssKb();
            cycles();
            GC.Collect();
            GC.WaitForPendingFinalizers();
            long after = RssKb();
            Console.WriteLine("    1000 disposed sessions: RSS {0} kB -> {1} kB (a leaked KV cache alone would be {2} kB)",
                              before, after, 1000 * kv / 1024);
            Assert(after - before < 4096, "RSS growth under 4 MB over 1000 create/free cycles");
            // Finalizer path: sessions never disposed are freed by SafeHandle's finalizer. The
            // wrappers must become collectable (nothing roots them) and RSS must stop growing
            // (it peaks while up to 200 sessions are alive between collections).
            long[] rss = new long[8];
            int collected = 0;
            for (int round = 0; round < rss.Length; round++)
            {
                var weak = new WeakReference[200];
                MakeUndisposedSessions(m, toks, weak);
                GC.Collect();
                GC.WaitForPendingFinalizers();
                GC.Collect();
                rss[round] = RssKb();
                foreach (WeakReference w in weak) if (!w.IsAlive) collected++;
            }
            Console.WriteLine("    {0} of {1} undisposed sessions finalized; RSS after each 200: {2} kB",
                              collected, 200 * rss.Length, string.Join(", ", rss));
            Assert(collected >= 200 * rss.Length * 9 / 10, "undisposed sessions are collected");
            Assert(rss[rss.Length - 1] - rss[3] < 4096, "finalized sessions are freed (RSS plateaus)");
        }
    }
}
