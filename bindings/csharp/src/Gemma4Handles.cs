// Gemma4Handles.cs: SafeHandle subclasses owning gemma4_model * and gemma4_session *.
//
// The runtime creates them atomically from the native out-parameter (no IntPtr is ever exposed,
// so a handle cannot leak between the call and the wrap), keeps them alive for the duration of
// each P/Invoke that takes them (so a Dispose or finalizer racing a running generate waits for
// it), and calls the _free function exactly once. Sessions hold a native reference to their
// model, so a model handle released before its sessions is fine (abi/gemma4.h "Lifetimes").
using System;
using System.Runtime.InteropServices;

namespace Gemma4
{
    internal sealed class ModelHandle : SafeHandle
    {
        public ModelHandle() : base(IntPtr.Zero, true) { }
        public override bool IsInvalid { get { return handle == IntPtr.Zero; } }
        protected override bool ReleaseHandle()
        {
            NativeMethods.gemma4_model_free(handle);
            return true;
        }
    }

    internal sealed class SessionHandle : SafeHandle
    {
        public SessionHandle() : base(IntPtr.Zero, true) { }
        public override bool IsInvalid { get { return handle == IntPtr.Zero; } }
        protected override bool ReleaseHandle()
        {
            NativeMethods.gemma4_session_free(handle);
            return true;
        }
    }
}
