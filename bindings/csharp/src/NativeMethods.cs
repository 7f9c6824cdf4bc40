// NativeMethods.cs: the P/Invoke declarations of abi/gemma4.h, one per exported function.
//
// Signatures are "LibraryImport-style": only blittable types cross (int, long, float, pointers,
// IntPtr for function pointers) plus SafeHandle subclasses, so the same declarations compile
// with Mono's mcs and convert 1:1 to [LibraryImport] on modern .NET. Text is marshalled by hand
// (Utf8 below), never by the runtime's string marshaller. size_t is UIntPtr (64-bit on LP64).
// Not here: any policy (status -> exception, buffer sizing); see Gemma4Model/Gemma4Session.
using System;
using System.Runtime.InteropServices;
using System.Text;

namespace Gemma4
{
    internal static unsafe class NativeMethods
    {
        // Resolved as libgemma4.so on Linux (LD_LIBRARY_PATH or the loader's search path).
        internal const string Lib = "gemma4";

        // gemma4_token_fn: (const char *piece, size_t len, int32_t token, void *user_data)
        [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
        internal delegate int TokenFn(IntPtr piece, UIntPtr len, int token, IntPtr userData);

        // gemma4_log_fn: (int32_t level, const char *message, void *user_data)
        [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
        internal delegate void LogFn(int level, IntPtr message, IntPtr userData);

        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern IntPtr gemma4_version();
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern int gemma4_abi_version();
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern IntPtr gemma4_last_error();
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern IntPtr gemma4_status_name(int status);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern int gemma4_set_log_callback(IntPtr fn, IntPtr userData);

        // ---- models
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern int gemma4_load(byte* modelDir, int device, int deviceIndex,
                                               long nCtx, int nThreads, out ModelHandle model);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern int gemma4_load_ex(byte* modelDir, int device, int deviceIndex,
                                                  long nCtx, int nThreads, uint flags,
                                                  out ModelHandle model);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern void gemma4_model_free(IntPtr model);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern int gemma4_model_info(ModelHandle model, int key, long* value);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern int gemma4_model_variant(ModelHandle model, byte* buf,
                                                        UIntPtr capacity, UIntPtr* nOut);

        // ---- tokenizer and chat format
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern int gemma4_tokenize(ModelHandle model, byte* text, UIntPtr len,
                                                   int flags, int* ids, UIntPtr capacity,
                                                   UIntPtr* nOut);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern int gemma4_detokenize(ModelHandle model, int* ids, UIntPtr nIds,
                                                     int flags, byte* buf, UIntPtr capacity,
                                                     UIntPtr* nOut);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern int gemma4_token_piece(ModelHandle model, int token, byte* buf,
                                                      UIntPtr capacity, UIntPtr* nOut);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern int gemma4_chat_apply(ModelHandle model, IntPtr* roles,
                                                     IntPtr* contents, UIntPtr nMessages,
                                                     int addGenerationPrompt, byte* buf,
                                                     UIntPtr capacity, UIntPtr* nOut);

        // ---- sessions
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern int gemma4_session_new(ModelHandle model, long nCtx,
                                                      out SessionHandle session);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern void gemma4_session_free(IntPtr session);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern int gemma4_session_step(SessionHandle session, int* tokens,
                                                       UIntPtr nTokens, float* logits,
                                                       UIntPtr capacity, UIntPtr* nLogits);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern int gemma4_kv_reset(SessionHandle session);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern int gemma4_session_truncate(SessionHandle session, long nKeep);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern int gemma4_session_info(SessionHandle session, int key, long* value);

        // ---- precision
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern int gemma4_session_set_precision(SessionHandle session, int precision);

        // ---- sampling
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern int gemma4_session_set_greedy(SessionHandle session);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern int gemma4_session_set_sampling(SessionHandle session,
                                                               float temperature, int topK,
                                                               float topP, float minP);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern int gemma4_session_set_repetition_penalty(SessionHandle session,
                                                                         float penalty, int lastN);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern int gemma4_session_set_seed(SessionHandle session, ulong seed);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern int gemma4_session_sample(SessionHandle session, int* token);

        // ---- generation
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern int gemma4_session_add_stop(SessionHandle session, byte* stop);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern int gemma4_session_clear_stops(SessionHandle session);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern int gemma4_generate(SessionHandle session, byte* prompt,
                                                   int maxTokens, IntPtr onToken, IntPtr userData);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern int gemma4_chat_generate(SessionHandle session, IntPtr* roles,
                                                        IntPtr* contents, UIntPtr nMessages,
                                                        int maxTokens, IntPtr onToken,
                                                        IntPtr userData);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern int gemma4_session_cancel(SessionHandle session);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern int gemma4_session_clear_cancel(SessionHandle session);

        // ---- chat with tools and thinking (JSON conversations)
        // gemma4_chat_event_fn: (int32_t kind, const char *text, size_t len, void *user_data)
        [UnmanagedFunctionPointer(CallingConvention.Cdecl)]
        internal delegate int ChatEventFn(int kind, IntPtr text, UIntPtr len, IntPtr userData);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern int gemma4_chat_render_json(ModelHandle model, byte* messagesJson,
                                                           byte* toolsJson, int flags, byte* buf,
                                                           UIntPtr capacity, UIntPtr* nOut);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern int gemma4_chat_tokenize_json(ModelHandle model, byte* messagesJson,
                                                             byte* toolsJson, int flags, int* ids,
                                                             UIntPtr capacity, UIntPtr* nOut);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern int gemma4_chat_complete(SessionHandle session, byte* messagesJson,
                                                        byte* toolsJson, int flags, int maxTokens,
                                                        IntPtr onEvent, IntPtr userData);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern int gemma4_chat_result(SessionHandle session, byte* buf,
                                                      UIntPtr capacity, UIntPtr* nOut);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern int gemma4_session_reset_sampling(SessionHandle session);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern int gemma4_session_get_sampling(SessionHandle session, float* temperature,
                                                               int* topK, float* topP, float* minP);
        [DllImport(Lib, CallingConvention = CallingConvention.Cdecl, ExactSpelling = true)]
        internal static extern int gemma4_session_force_tokens(SessionHandle session, int* tokens,
                                                               UIntPtr n);
    }

    // UTF-8 in and out by hand: NUL-terminated byte arrays for const char *, and strlen + copy
    // for the library's static/thread-local strings.
    internal static unsafe class Utf8
    {
        internal static readonly UTF8Encoding Strict = new UTF8Encoding(false, false);

        // text + '\0'. Embedded NULs would truncate silently on the C side, so reject them.
        internal static byte[] NulTerminated(string s, string paramName)
        {
            if (s == null) throw new ArgumentNullException(paramName);
            if (s.IndexOf('\0') >= 0)
                throw new ArgumentException("string contains a NUL character", paramName);
            byte[] b = new byte[Strict.GetByteCount(s) + 1];
            Strict.GetBytes(s, 0, s.Length, b, 0);
            return b;
        }

        internal static string FromNative(IntPtr p)
        {
            if (p == IntPtr.Zero) return "";
            byte* s = (byte*)p;
            int n = 0;
            while (s[n] != 0) n++;
            return Strict.GetString(s, n);
        }

        // A block of NUL-terminated strings plus the const char *const * table pointing into it,
        // in one HGlobal allocation that Dispose frees (used for roles[] / contents[]).
        internal sealed class StringArray : IDisposable
        {
            IntPtr block;
            internal readonly int Count;

            internal StringArray(string[] items, string paramName)
            {
                Count = items.Length;
                byte[][] enc = new byte[items.Length][];
                long bytes = 0;
                for (int i = 0; i < items.Length; i++)
                {
                    enc[i] = NulTerminated(items[i], paramName);
                    bytes += enc[i].Length;
                }
                long table = (long)IntPtr.Size * Math.Max(1, items.Length);
                block = Marshal.AllocHGlobal(new IntPtr(table + bytes));
                IntPtr* ptrs = (IntPtr*)block;
                byte* cursor = (byte*)block + table;
                for (int i = 0; i < items.Length; i++)
                {
                    Marshal.Copy(enc[i], 0, (IntPtr)cursor, enc[i].Length);
                    ptrs[i] = (IntPtr)cursor;
                    cursor += enc[i].Length;
                }
            }

            internal IntPtr* Pointer { get { return (IntPtr*)block; } }

            public void Dispose()
            {
                if (block != IntPtr.Zero) Marshal.FreeHGlobal(block);
                block = IntPtr.Zero;
            }
        }
    }
}
