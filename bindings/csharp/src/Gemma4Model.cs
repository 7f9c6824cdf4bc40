// Gemma4Model.cs: a loaded checkpoint (weights + tokenizer), shared read-only by any number of
// sessions and threads. Tokenizer, chat template and model properties live here; generation
// state lives in Gemma4Session / Gemma4ChatSession.
//
// Text functions follow the C buffer convention internally (size query, then fill), so callers
// only see strings and arrays; the (buffer, capacity) overloads are kept where a caller may
// want to reuse its own buffer, and they surface BufferTooSmall like the C API.
using System;
using System.Collections.Generic;

namespace Gemma4
{
    public enum Gemma4Device { Cpu = 0, Cuda = 1 }

    // GEMMA4_INFO_* keys.
    public enum Gemma4ModelInfo
    {
        VocabSize = 0, ContextLength = 1, NLayers = 2, BosId = 3, EosId = 4, WeightBytes = 5,
        HiddenSize = 6, NCtx = 7, EndOfTurnId = 8, Device = 9,
    }

    public sealed unsafe partial class Gemma4Model : IDisposable
    {
        internal readonly ModelHandle Handle;

        Gemma4Model(ModelHandle handle) { Handle = handle; }

        // Loads a Hugging Face Gemma 4 checkpoint directory. nCtx <= 0: min(8192, model max);
        // nThreads <= 0: all processors. Throws Gemma4Exception (IO for a missing directory,
        // Format/Config for a bad checkpoint, Device/Unsupported for CUDA problems). The weight
        // files are memory-mapped and must not be truncated or rewritten while loaded (SIGBUS);
        // inMemory reads them into memory instead (GEMMA4_LOAD_IN_MEMORY).
        public static Gemma4Model Load(string modelDir, long nCtx = 0, int nThreads = 0,
                                       Gemma4Device device = Gemma4Device.Cpu, int deviceIndex = 0,
                                       bool inMemory = false)
        {
            byte[] dir = Utf8.NulTerminated(modelDir, "modelDir");
            ModelHandle h;
            int st;
            try
            {
                fixed (byte* p = dir)
                    st = NativeMethods.gemma4_load_ex(p, (int)device, deviceIndex, nCtx, nThreads,
                                                      inMemory ? 1u : 0u, out h);
            }
            catch (DllNotFoundException e)
            {
                throw Gemma4LibraryLocator.Explain(e); // where the runtime looked, what to do
            }
            if (st != 0)
            {
                Gemma4Exception e = Gemma4Exception.FromLastError(st);
                if (h != null) h.Dispose();
                throw e;
            }
            return new Gemma4Model(h);
        }

        // Drops this reference; sessions created from the model keep the weights alive.
        public void Dispose() { Handle.Dispose(); }

        public long GetInfo(Gemma4ModelInfo key)
        {
            long v;
            Gemma4Exception.Check(NativeMethods.gemma4_model_info(Handle, (int)key, &v));
            return v;
        }

        public int VocabSize { get { return (int)GetInfo(Gemma4ModelInfo.VocabSize); } }
        public int BosId { get { return (int)GetInfo(Gemma4ModelInfo.BosId); } }
        public int EosId { get { return (int)GetInfo(Gemma4ModelInfo.EosId); } }
        public int EndOfTurnId { get { return (int)GetInfo(Gemma4ModelInfo.EndOfTurnId); } }
        public long DefaultContext { get { return GetInfo(Gemma4ModelInfo.NCtx); } }

        // "e2b", "e4b", "26b-a4b", "31b" or "custom".
        public string Variant
        {
            get
            {
                UIntPtr n;
                Gemma4Exception.Check(NativeMethods.gemma4_model_variant(Handle, null, UIntPtr.Zero, &n));
                byte[] buf = new byte[(int)n + 1];
                fixed (byte* b = buf)
                    Gemma4Exception.Check(NativeMethods.gemma4_model_variant(Handle, b, (UIntPtr)buf.Length, &n));
                return Utf8.Strict.GetString(buf, 0, (int)n);
            }
        }

        // Encodes like the checkpoint's Hugging Face tokenizer (special-token text becomes its
        // token). addBos prepends <bos>. Throws NoTokenizer without tokenizer.json.
        public int[] Tokenize(string text, bool addBos = false)
        {
            if (text == null) throw new ArgumentNullException("text");
            byte[] utf8 = Utf8.Strict.GetBytes(text);
            UIntPtr n;
            fixed (byte* t = utf8)
            {
                Gemma4Exception.Check(NativeMethods.gemma4_tokenize(Handle, t, (UIntPtr)utf8.Length,
                                                                    addBos ? 1 : 0, null, UIntPtr.Zero, &n));
                int[] ids = new int[(int)n];
                fixed (int* p = ids)
                    Gemma4Exception.Check(NativeMethods.gemma4_tokenize(Handle, t, (UIntPtr)utf8.Length,
                                                                        addBos ? 1 : 0, p, (UIntPtr)ids.Length, &n));
                return ids;
            }
        }

        // Into a caller buffer: returns the count, or throws BufferTooSmall (the exception's
        // message names the size needed).
        public int Tokenize(string text, int[] ids, bool addBos = false)
        {
            if (text == null) throw new ArgumentNullException("text");
            if (ids == null) throw new ArgumentNullException("ids");
            byte[] utf8 = Utf8.Strict.GetBytes(text);
            UIntPtr n;
            fixed (byte* t = utf8)
            fixed (int* p = ids)
                Gemma4Exception.Check(NativeMethods.gemma4_tokenize(Handle, t, (UIntPtr)utf8.Length, addBos ? 1 : 0,
                                                                    ids.Length == 0 ? null : p, (UIntPtr)ids.Length, &n));
            return (int)n;
        }

        // Decodes like Hugging Face decode(); throws InvalidToken for ids outside the vocabulary.
        public string Detokenize(IList<int> ids, bool skipSpecial = false)
        {
            if (ids == null) throw new ArgumentNullException("ids");
            int[] arr = new int[ids.Count];
            ids.CopyTo(arr, 0);
            int flags = skipSpecial ? 1 : 0;
            UIntPtr n;
            fixed (int* p = arr)
            {
                int* pp = arr.Length == 0 ? null : p;
                // an empty id list is legal: point at a dummy so the C side sees a non-NULL array
                int dummy = 0;
                if (pp == null) pp = &dummy;
                Gemma4Exception.Check(NativeMethods.gemma4_detokenize(Handle, pp, (UIntPtr)arr.Length, flags, null, UIntPtr.Zero, &n));
                byte[] buf = new byte[(int)n + 1];
                fixed (byte* b = buf)
                    Gemma4Exception.Check(NativeMethods.gemma4_detokenize(Handle, pp, (UIntPtr)arr.Length, flags, b, (UIntPtr)buf.Length, &n));
                return Utf8.Strict.GetString(buf, 0, (int)n);
            }
        }

        // The raw bytes one token adds to a text stream (may be part of a UTF-8 sequence).
        public byte[] TokenPiece(int token)
        {
            UIntPtr n;
            Gemma4Exception.Check(NativeMethods.gemma4_token_piece(Handle, token, null, UIntPtr.Zero, &n));
            byte[] buf = new byte[(int)n + 1];
            fixed (byte* b = buf)
                Gemma4Exception.Check(NativeMethods.gemma4_token_piece(Handle, token, b, (UIntPtr)buf.Length, &n));
            byte[] piece = new byte[(int)n];
            Array.Copy(buf, piece, piece.Length);
            return piece;
        }

        // Renders messages in Gemma 4's chat format (starts with "<bos>"), byte-identical to
        // transformers' apply_chat_template. Unknown roles throw InvalidArgument from the library.
        public string ApplyChatTemplate(IList<Gemma4Message> messages, bool addGenerationPrompt = true)
        {
            string[] roles, contents;
            Gemma4Message.Split(messages, out roles, out contents);
            using (var r = new Utf8.StringArray(roles, "messages"))
            using (var c = new Utf8.StringArray(contents, "messages"))
            {
                UIntPtr n;
                int add = addGenerationPrompt ? 1 : 0;
                Gemma4Exception.Check(NativeMethods.gemma4_chat_apply(Handle, r.Pointer, c.Pointer, (UIntPtr)r.Count,
                                                                      add, null, UIntPtr.Zero, &n));
                byte[] buf = new byte[(int)n + 1];
                fixed (byte* b = buf)
                    Gemma4Exception.Check(NativeMethods.gemma4_chat_apply(Handle, r.Pointer, c.Pointer, (UIntPtr)r.Count,
                                                                          add, b, (UIntPtr)buf.Length, &n));
                return Utf8.Strict.GetString(buf, 0, (int)n);
            }
        }

        // A new conversation state with its own KV cache (nCtx <= 0: the model's default).
        public Gemma4Session CreateSession(long nCtx = 0)
        {
            SessionHandle h;
            int st = NativeMethods.gemma4_session_new(Handle, nCtx, out h);
            if (st != 0)
            {
                Gemma4Exception e = Gemma4Exception.FromLastError(st);
                if (h != null) h.Dispose();
                throw e;
            }
            return new Gemma4Session(h, VocabSize);
        }

        // CreateSession, then SetPrecision(precision).
        public Gemma4Session CreateSession(long nCtx, Gemma4Precision precision)
        {
            Gemma4Session s = CreateSession(nCtx);
            try { s.SetPrecision(precision); }
            catch
            {
                s.Dispose();
                throw;
            }
            return s;
        }
    }
}
