// Gemma4LibraryLocator.cs: what a DllNotFoundException for libgemma4 becomes. P/Invoke finds
// "gemma4" next to the program (Mono and .NET look in the directory of Gemma4.dll first), then
// in LD_LIBRARY_PATH and the system library path; neither runtime can be pointed elsewhere
// after start (Mono 6.8 has no NativeLibrary resolver). So when the library is missing, the
// error says where the runtime looked and, if it can see a repository build (build/libgemma4.so
// above the program or the working directory), how to use it.
using System;
using System.IO;

namespace Gemma4
{
    internal static class Gemma4LibraryLocator
    {
        internal static DllNotFoundException Explain(DllNotFoundException e)
        {
            string appDir = Path.GetDirectoryName(typeof(Gemma4LibraryLocator).Assembly.Location) ?? ".";
            string ldPath = Environment.GetEnvironmentVariable("LD_LIBRARY_PATH") ?? "";
            string found = FindRepositoryBuild(appDir) ?? FindRepositoryBuild(Environment.CurrentDirectory);
            string msg = "libgemma4.so not found: looked next to the program (" + appDir + "), in LD_LIBRARY_PATH ("
                + (ldPath.Length == 0 ? "unset" : ldPath) + ") and in the system library path. ";
            msg += found != null
                ? "A build is at " + found + ": copy libgemma4.so* next to the program or set LD_LIBRARY_PATH=" + Path.GetDirectoryName(found)
                : "Build it (bash scripts/build.sh makes build/libgemma4.so) and copy it next to the program, set LD_LIBRARY_PATH, or install it (cmake --install build)";
            return new DllNotFoundException(msg + " (" + e.Message + ")", e);
        }

        // build/libgemma4.so in dir or one of its parents.
        static string FindRepositoryBuild(string dir)
        {
            try
            {
                for (DirectoryInfo d = new DirectoryInfo(dir); d != null; d = d.Parent)
                {
                    string p = Path.Combine(d.FullName, "build", "libgemma4.so");
                    if (File.Exists(p)) return p;
                }
            }
            catch (Exception) { }
            return null;
        }
    }
}
