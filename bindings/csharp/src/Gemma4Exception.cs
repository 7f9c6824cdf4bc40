// Gemma4Exception.cs: status codes of abi/gemma4.h and the exception that carries them.
//
// Every failing native call becomes a Gemma4Exception whose Status is the library's code and
// whose Message is gemma4_last_error(), read on the same thread right after the call.
// Cancellation through a CancellationToken is reported as OperationCanceledException instead.
using System;

namespace Gemma4
{
    // Fixed numbers from abi/gemma4.h; never renumbered.
    public enum Gemma4Status
    {
        Ok = 0,
        InvalidArgument = 1,
        IO = 2,
        Format = 3,
        Unsupported = 4,
        OutOfMemory = 5,
        Device = 6,
        ContextFull = 7,
        BufferTooSmall = 8,
        Internal = 9,
        InvalidToken = 10,
        Cancelled = 11,
        Config = 12,
        NoTokenizer = 13,
        Busy = 14,
    }

    public class Gemma4Exception : Exception
    {
        public Gemma4Exception(Gemma4Status status, string message)
            : base(Gemma4Library.StatusName((int)status) + ": " + message)
        {
            Status = status;
            NativeMessage = message;
        }

        public Gemma4Status Status { get; private set; }
        // gemma4_last_error() text without the status-name prefix.
        public string NativeMessage { get; private set; }
        public int Code { get { return (int)Status; } }

        // Reads the thread-local message: call immediately after the failing native call.
        internal static void Check(int status)
        {
            if (status != 0) throw FromLastError(status);
        }

        internal static Gemma4Exception FromLastError(int status)
        {
            return new Gemma4Exception((Gemma4Status)status,
                                       Utf8.FromNative(NativeMethods.gemma4_last_error()));
        }
    }

    // Library-wide functions: version, status names, log callback.
    public static class Gemma4Library
    {
        // GEMMA4_ABI_VERSION this binding was written against.
        public const int BindingAbiVersion = 0;

        public static string Version
        {
            get
            {
                try { return Utf8.FromNative(NativeMethods.gemma4_version()); }
                catch (DllNotFoundException e) { throw Gemma4LibraryLocator.Explain(e); }
            }
        }
        public static int AbiVersion { get { return NativeMethods.gemma4_abi_version(); } }

        public static string StatusName(int status)
        {
            return Utf8.FromNative(NativeMethods.gemma4_status_name(status));
        }

        // Every thunk ever installed stays rooted: another thread may still be inside the old one
        // when the setter returns, and a collected delegate there would crash the process.
        static readonly System.Collections.Generic.List<NativeMethods.LogFn> logThunks =
            new System.Collections.Generic.List<NativeMethods.LogFn>();
        static readonly object logGate = new object();

        // Installs (or with null removes) a receiver for progress and warning messages. The
        // callback may run on any thread that calls into gemma4; exceptions it throws are dropped
        // (they must not unwind through native frames).
        public static void SetLogCallback(Action<int, string> callback)
        {
            lock (logGate)
            {
                NativeMethods.LogFn thunk = null;
                IntPtr fp = IntPtr.Zero;
                if (callback != null)
                {
                    thunk = (level, message, user) =>
                    {
                        try { callback(level, Utf8.FromNative(message)); }
                        catch (Exception) { }
                    };
                    fp = System.Runtime.InteropServices.Marshal.GetFunctionPointerForDelegate(thunk);
                }
                if (thunk != null) logThunks.Add(thunk);
                Gemma4Exception.Check(NativeMethods.gemma4_set_log_callback(fp, IntPtr.Zero));
            }
        }
    }
}
