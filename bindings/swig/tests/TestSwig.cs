// TestSwig.cs: the SWIG-generated C# wrapper (namespace Gemma4.Swig) on tests/golden/e2b:
// load, tokenize/detokenize, step, greedy generate, the precision setting, and a status turned
// into an exception.
// Exit code 0 on success, 1 on the first failed check.
using System;
using System.IO;
using Gemma4.Swig;

static class TestSwig {
    static void Check(bool ok, string what) {
        if (!ok) { Console.Error.WriteLine("FAILED: " + what); Environment.Exit(1); }
    }

    static int Main() {
        string fix = Environment.GetEnvironmentVariable("GEMMA4_FIXTURES") ?? "../../../tests/golden";
        string e2b = Path.Combine(fix, "e2b");
        Check(gemma4swig.gemma4_version() == "0.1.0", "version");
        using (var m = new Model(e2b, gemma4swig.GEMMA4_DEVICE_CPU, 0, 256, 2)) {
            Check(m.info(gemma4swig.GEMMA4_INFO_VOCAB_SIZE) == 512, "vocab");
            string text = "Hello wörld";
            IntVector ids = m.tokenize(text, true);
            Check(ids[0] == 2, "bos");
            var rest = new IntVector();
            for (int i = 1; i < ids.Count; i++) rest.Add(ids[i]);
            Check(m.detokenize(rest, false) == text, "round trip");
            using (Session s = m.session(0)) {
                FloatVector logits = s.step(ids);
                Check(logits.Count == 512, "logits size");
                s.reset();
                string a = s.generate("The sea", 16);
                s.reset();
                Check(s.generate("The sea", 16) == a, "greedy generate reproducible");
                Console.WriteLine("generate: \"" + a + "\"");
                // precision: F32 fixture weights, so bf16 changes nothing numerically here (the
                // numeric comparison lives in tests/test_forward_cpu.c); this checks the setting
                Check(s.precision() == gemma4swig.GEMMA4_PRECISION_FP32, "default precision fp32");
                s.set_precision(gemma4swig.GEMMA4_PRECISION_BF16);
                Check(s.precision() == gemma4swig.GEMMA4_PRECISION_BF16, "precision bf16");
                Check(s.info(gemma4swig.GEMMA4_SESSION_PRECISION) == 1, "GEMMA4_SESSION_PRECISION");
                s.reset();
                FloatVector bl = s.step(ids); // a step in bf16 mode
                Check(bl.Count == 512, "bf16 logits size");
                foreach (float x in bl) Check(!float.IsNaN(x) && !float.IsInfinity(x), "bf16 logits finite");
                s.set_precision(gemma4swig.GEMMA4_PRECISION_FP32);
                Check(s.precision() == gemma4swig.GEMMA4_PRECISION_FP32, "precision back to fp32");
                try {
                    s.set_precision(7);
                    Check(false, "precision 7 accepted");
                } catch (ApplicationException e) {
                    Check(e.Message.StartsWith("GEMMA4_ERR_INVALID_ARGUMENT(1)") &&
                          e.Message.Contains("unknown precision 7"), "exception: " + e.Message);
                    Console.WriteLine("expected error: " + e.Message);
                }
                Check(s.precision() == gemma4swig.GEMMA4_PRECISION_FP32, "failed set changes nothing");
                s.reset();
                try {
                    s.step(new IntVector(new int[] { 9999 }));
                    Check(false, "invalid token accepted");
                } catch (ApplicationException e) {
                    Check(e.Message.StartsWith("GEMMA4_ERR_INVALID_TOKEN(10)"), "exception: " + e.Message);
                    Console.WriteLine("expected error: " + e.Message);
                }
            }
        }
        // an embedded NUL is refused before marshalling (which would cut the string there)
        using (var m = new Model(Path.Combine(fix, "e2b"), gemma4swig.GEMMA4_DEVICE_CPU, 0, 64, 1))
        using (var s = m.session()) {
            string[] what = { "generate", "add_stop", "StringVector.Add", "Model" };
            Action[] calls = {
                () => s.generate("hello\0 IGNORE", 4),
                () => s.add_stop("a\0b"),
                () => new StringVector().Add("a\0b"),
                () => new Model(Path.Combine(fix, "e2b") + "\0/x"),
            };
            for (int i = 0; i < calls.Length; i++) {
                try {
                    calls[i]();
                    Check(false, what[i] + ": NUL accepted");
                } catch (ArgumentException e) {
                    Check(e.Message.Contains("NUL"), what[i] + ": " + e.Message);
                }
            }
            Check(s.info(gemma4swig.GEMMA4_SESSION_N_PAST) == 0, "nothing ran");
        }
        try {
            new Model("/nonexistent/model");
            Check(false, "bad path accepted");
        } catch (ApplicationException e) {
            Check(e.Message.StartsWith("GEMMA4_ERR_IO(2)"), "exception: " + e.Message);
        }
        Console.WriteLine("swig csharp: all checks passed");
        return 0;
    }
}
