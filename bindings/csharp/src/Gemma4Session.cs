// Gemma4Session.cs: one native gemma4_session: a KV cache, position and sampler. Low-level
// stepping (Step/Sample/Truncate, logits out) and streamed generation (Generate, ChatGenerate,
// GenerateStream, GenerateAsync) with CancellationToken support.
//
// One thread at a time, as in C: a second concurrent call throws InvalidOperationException
// instead of racing (Cancel is the exception and may be called from any thread). Cancelling a
// token stops generation at the next token or micro-batch boundary and throws
// OperationCanceledException; the tokens already run stay in the context, and the session stays
// usable (Reset, Truncate, or ChatGenerate with the full conversation rewinds as needed).
using System;
using System.Collections.Generic;
using System.Runtime.ExceptionServices;
using System.Runtime.InteropServices;
using System.Text;
using System.Threading;
using System.Threading.Tasks;

namespace Gemma4
{
    public sealed unsafe partial class Gemma4Session : IDisposable
    {
        internal readonly SessionHandle Handle;
        readonly int vocabSize;
        int busy; // 1 while a call is using the native session
        int cancelSent; // 1 after gemma4_session_cancel, until a generation clears it

        internal Gemma4Session(SessionHandle handle, int vocabSize)
        {
            Handle = handle;
            this.vocabSize = vocabSize;
        }

        public int VocabSize { get { return vocabSize; } }
        public bool IsDisposed { get { return Handle.IsClosed; } }

        // Frees the native session (after any call still running on it returns).
        public void Dispose() { Handle.Dispose(); }

        internal void Enter()
        {
            if (Handle.IsClosed) throw new ObjectDisposedException("Gemma4Session");
            if (Interlocked.CompareExchange(ref busy, 1, 0) != 0)
                throw new InvalidOperationException("the session is in use by another call (sessions are single-threaded)");
        }

        internal void Exit() { Volatile.Write(ref busy, 0); }

        // ---- stepping

        // Runs tokens[offset .. offset+count) and, when logits is not null, writes the last
        // position's logits into it (it must hold VocabSize floats, else BufferTooSmall).
        public void Step(int[] tokens, int offset, int count, float[] logits)
        {
            if (tokens == null) throw new ArgumentNullException("tokens");
            if (offset < 0 || count < 0 || offset + count > tokens.Length) throw new ArgumentOutOfRangeException("count");
            Enter();
            try
            {
                UIntPtr n;
                fixed (int* t = tokens)
                fixed (float* l = logits)
                {
                    int* tp = tokens.Length == 0 ? null : t + offset;
                    Gemma4Exception.Check(NativeMethods.gemma4_session_step(
                        Handle, tp, (UIntPtr)count, logits == null ? null : l,
                        (UIntPtr)(logits == null ? 0 : logits.Length), &n));
                }
            }
            finally { Exit(); }
        }

        public void Step(int[] tokens) { Step(tokens, 0, tokens == null ? 0 : tokens.Length, null); }
        public void Step(int[] tokens, float[] logits) { Step(tokens, 0, tokens == null ? 0 : tokens.Length, logits); }

        // Runs tokens and returns the last position's logits (VocabSize floats).
        public float[] StepLogits(int[] tokens)
        {
            float[] l = new float[vocabSize];
            Step(tokens, l);
            return l;
        }

        // Samples the next token from the last step's logits (does not append it).
        public int Sample()
        {
            Enter();
            try
            {
                int t;
                Gemma4Exception.Check(NativeMethods.gemma4_session_sample(Handle, &t));
                return t;
            }
            finally { Exit(); }
        }

        public void Reset() { Simple(h => NativeMethods.gemma4_kv_reset(h)); }
        public void Truncate(long nKeep) { Simple(h => NativeMethods.gemma4_session_truncate(h, nKeep)); }

        public long GetInfo(Gemma4SessionInfo key)
        {
            Enter();
            try
            {
                long v;
                Gemma4Exception.Check(NativeMethods.gemma4_session_info(Handle, (int)key, &v));
                return v;
            }
            finally { Exit(); }
        }

        public long NPast { get { return GetInfo(Gemma4SessionInfo.NPast); } }
        public long NCtx { get { return GetInfo(Gemma4SessionInfo.NCtx); } }
        public long NEvaluated { get { return GetInfo(Gemma4SessionInfo.NEvaluated); } }
        public Gemma4Precision Precision { get { return (Gemma4Precision)GetInfo(Gemma4SessionInfo.Precision); } }

        // Fp32 (the default) or Bf16, from the next step on; the KV cache is kept. A value outside
        // the enum throws Gemma4Exception (InvalidArgument) and changes nothing.
        public void SetPrecision(Gemma4Precision precision)
        {
            Simple(h => NativeMethods.gemma4_session_set_precision(h, (int)precision));
        }

        // ---- sampler settings

        public void SetGreedy() { Simple(h => NativeMethods.gemma4_session_set_greedy(h)); }
        public void SetSampling(float temperature, int topK = 0, float topP = 1f, float minP = 0f)
        {
            Simple(h => NativeMethods.gemma4_session_set_sampling(h, temperature, topK, topP, minP));
        }
        public void SetRepetitionPenalty(float penalty, int lastN = 0)
        {
            Simple(h => NativeMethods.gemma4_session_set_repetition_penalty(h, penalty, lastN));
        }
        public void SetSeed(ulong seed) { Simple(h => NativeMethods.gemma4_session_set_seed(h, seed)); }
        public void AddStop(string stop)
        {
            byte[] s = Utf8.NulTerminated(stop, "stop");
            Simple(h => { fixed (byte* p = s) return NativeMethods.gemma4_session_add_stop(h, p); });
        }
        public void ClearStops() { Simple(h => NativeMethods.gemma4_session_clear_stops(h)); }

        // Applies every field of options (greedy unless Temperature > 0; stops replaced).
        public void Configure(Gemma4GenerationOptions options)
        {
            if (options == null) throw new ArgumentNullException("options");
            if (options.Temperature.HasValue && options.Temperature.Value > 0)
                SetSampling(options.Temperature.Value, options.TopK ?? 0, options.TopP ?? 1f, options.MinP ?? 0f);
            else
                SetGreedy();
            SetRepetitionPenalty(options.RepetitionPenalty ?? 1f, options.RepetitionLastN);
            if (options.Seed.HasValue) SetSeed(options.Seed.Value);
            ClearStops();
            if (options.Stop != null)
                foreach (string s in options.Stop) AddStop(s);
        }

        // Asks a running generation or step to stop (any thread). Returns false when the session
        // is already disposed. Prefer a CancellationToken, which also covers the start-up race.
        public bool Cancel()
        {
            Volatile.Write(ref cancelSent, 1);
            try { return NativeMethods.gemma4_session_cancel(Handle) == 0; }
            catch (ObjectDisposedException) { return false; }
        }

        delegate int HandleCall(SessionHandle h);

        void Simple(HandleCall call)
        {
            Enter();
            try { Gemma4Exception.Check(call(Handle)); }
            finally { Exit(); }
        }

        // ---- generation

        // Appends prompt (raw text; special-token text recognised, <bos> added on an empty
        // session) and generates up to maxTokens tokens. onPiece receives each piece of text and
        // returns false to stop. Blocks the calling thread.
        public Gemma4Result Generate(string prompt, int maxTokens, Func<string, bool> onPiece = null,
                                     CancellationToken cancellationToken = default(CancellationToken))
        {
            byte[] p = Utf8.NulTerminated(prompt, "prompt");
            ClearStaleCancel();
            return Run(fn => { fixed (byte* pp = p) return NativeMethods.gemma4_generate(Handle, pp, maxTokens, fn, IntPtr.Zero); },
                       maxTokens, onPiece, cancellationToken);
        }

        // Chat with cache reuse: pass the whole conversation every turn (including the model's
        // earlier replies); only the part not already in this session's context is run.
        public Gemma4Result ChatGenerate(IList<Gemma4Message> messages, int maxTokens, Func<string, bool> onPiece = null,
                                         CancellationToken cancellationToken = default(CancellationToken))
        {
            string[] roles, contents;
            Gemma4Message.Split(messages, out roles, out contents);
            ClearStaleCancel();
            using (var r = new Utf8.StringArray(roles, "messages"))
            using (var c = new Utf8.StringArray(contents, "messages"))
                return Run(fn => NativeMethods.gemma4_chat_generate(Handle, r.Pointer, c.Pointer, (UIntPtr)r.Count, maxTokens, fn, IntPtr.Zero),
                           maxTokens, onPiece, cancellationToken);
        }

        // Generate on a worker thread, pieces pulled with foreach / MoveNextAsync.
        public Gemma4TokenStream GenerateStream(string prompt, int maxTokens,
                                                CancellationToken cancellationToken = default(CancellationToken))
        {
            if (prompt == null) throw new ArgumentNullException("prompt");
            return new Gemma4TokenStream((onPiece, ct) => Generate(prompt, maxTokens, onPiece, ct), cancellationToken);
        }

        // Generate on a worker thread; onPiece (may be null) runs on that thread.
        public Task<Gemma4Result> GenerateAsync(string prompt, int maxTokens, Action<string> onPiece = null,
                                                CancellationToken cancellationToken = default(CancellationToken))
        {
            if (prompt == null) throw new ArgumentNullException("prompt");
            Func<string, bool> f = null;
            if (onPiece != null) f = s => { onPiece(s); return true; };
            return Task.Factory.StartNew(() => Generate(prompt, maxTokens, f, cancellationToken), CancellationToken.None,
                                         TaskCreationOptions.LongRunning, TaskScheduler.Default);
        }

        // The C library never loses a cancel request: one that the cancelled call did not answer
        // (it finished first) would stop the next call at once. A chat turn starts fresh, so a
        // request left over from an earlier Cancel() is dropped first (a generation likewise).
        internal void ClearStaleCancel()
        {
            if (Interlocked.Exchange(ref cancelSent, 0) == 0) return;
            Enter();
            try { Gemma4Exception.Check(NativeMethods.gemma4_session_clear_cancel(Handle)); }
            finally { Exit(); }
        }

        internal delegate int NativeGenerate(IntPtr tokenFn);

        // The one place a managed callback crosses into native code. The delegate is rooted by
        // the local `thunk` and GC.KeepAlive after the call (the classic collected-callback
        // crash), exceptions thrown by onPiece are caught in the thunk (they must not unwind
        // through C frames) and rethrown here, and the token cancels natively through
        // gemma4_session_cancel and, for the race where it fires before the C call clears old
        // requests, by the thunk returning non-zero at the next token.
        Gemma4Result Run(NativeGenerate call, int maxTokens, Func<string, bool> onPiece, CancellationToken ct)
        {
            ct.ThrowIfCancellationRequested();
            Enter();
            try
            {
                Decoder decoder = Utf8.Strict.GetDecoder();
                var text = new StringBuilder();
                var tokens = new List<int>();
                Exception callbackError = null;
                bool stoppedByCallback = false, stoppedByToken = false;
                byte[] bytes = new byte[64];
                char[] chars = new char[64];

                NativeMethods.TokenFn thunk = (piece, len, token, user) =>
                {
                    try
                    {
                        if (token >= 0) tokens.Add(token);
                        int n = checked((int)(ulong)len);
                        if (n > bytes.Length) bytes = new byte[n * 2];
                        if (n > 0) Marshal.Copy(piece, bytes, 0, n);
                        int nc = decoder.GetCharCount(bytes, 0, n, token < 0);
                        if (nc > chars.Length) chars = new char[nc * 2];
                        nc = decoder.GetChars(bytes, 0, n, chars, 0, token < 0);
                        if (nc > 0)
                        {
                            string s = new string(chars, 0, nc);
                            text.Append(s);
                            if (onPiece != null && !onPiece(s))
                            {
                                stoppedByCallback = true;
                                return 1;
                            }
                        }
                        if (ct.IsCancellationRequested)
                        {
                            stoppedByToken = true;
                            return 1;
                        }
                        return 0;
                    }
                    catch (Exception e)
                    {
                        callbackError = e;
                        return 1;
                    }
                };

                IntPtr fp = Marshal.GetFunctionPointerForDelegate(thunk);
                int st;
                string message = null;
                CancellationTokenRegistration reg = default(CancellationTokenRegistration);
                if (ct.CanBeCanceled) reg = ct.Register(() => Cancel());
                try
                {
                    st = call(fp);
                    if (st != 0) message = Utf8.FromNative(NativeMethods.gemma4_last_error());
                }
                finally
                {
                    reg.Dispose();
                    GC.KeepAlive(thunk);
                }

                if (callbackError != null) ExceptionDispatchInfo.Capture(callbackError).Throw();
                if (stoppedByToken || (st == (int)Gemma4Status.Cancelled && ct.IsCancellationRequested))
                    throw new OperationCanceledException("generation cancelled", ct);
                if (st != 0) throw new Gemma4Exception((Gemma4Status)st, message);

                // flush a UTF-8 sequence the library left incomplete (shows as U+FFFD)
                int tail = decoder.GetChars(bytes, 0, 0, chars, 0, true);
                if (tail > 0) text.Append(chars, 0, tail);

                long prompt, gen, past, nctx;
                NativeMethods.gemma4_session_info(Handle, (int)Gemma4SessionInfo.LastPromptTokens, &prompt);
                NativeMethods.gemma4_session_info(Handle, (int)Gemma4SessionInfo.LastGenTokens, &gen);
                NativeMethods.gemma4_session_info(Handle, (int)Gemma4SessionInfo.NPast, &past);
                NativeMethods.gemma4_session_info(Handle, (int)Gemma4SessionInfo.NCtx, &nctx);
                bool length = !stoppedByCallback && (gen >= maxTokens || past >= nctx);
                return new Gemma4Result
                {
                    Text = text.ToString(),
                    Tokens = tokens.ToArray(),
                    PromptTokens = (int)prompt,
                    GeneratedTokens = (int)gen,
                    FinishReason = length ? Gemma4FinishReason.Length : Gemma4FinishReason.Stop,
                    StoppedByCallback = stoppedByCallback,
                };
            }
            finally { Exit(); }
        }
    }
}
