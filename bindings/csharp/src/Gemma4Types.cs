// Gemma4Types.cs: plain data of the high-level API: chat messages and role names, generation
// options (-> the session's sampler settings), and the result of one generation.
using System;
using System.Collections.Generic;

namespace Gemma4
{
    // One chat turn. Role is a Gemma 4 role ("system", "user", "model"; "assistant" is accepted
    // as "model"); see Gemma4Roles.Normalize for mapping other vocabularies.
    public sealed class Gemma4Message
    {
        public Gemma4Message(string role, string content)
        {
            if (role == null) throw new ArgumentNullException("role");
            Role = role;
            Content = content ?? "";
        }

        public string Role { get; private set; }
        public string Content { get; private set; }

        public static Gemma4Message System(string content) { return new Gemma4Message(Gemma4Roles.System, content); }
        public static Gemma4Message User(string content) { return new Gemma4Message(Gemma4Roles.User, content); }
        public static Gemma4Message Model(string content) { return new Gemma4Message(Gemma4Roles.Model, content); }

        internal static void Split(IList<Gemma4Message> messages, out string[] roles, out string[] contents)
        {
            if (messages == null) throw new ArgumentNullException("messages");
            roles = new string[messages.Count];
            contents = new string[messages.Count];
            for (int i = 0; i < messages.Count; i++)
            {
                if (messages[i] == null) throw new ArgumentException("messages[" + i + "] is null", "messages");
                roles[i] = messages[i].Role;
                contents[i] = messages[i].Content;
            }
        }
    }

    public static class Gemma4Roles
    {
        public const string System = "system";
        public const string User = "user";
        public const string Model = "model";

        // Maps a role name from another chat vocabulary (e.g. Microsoft.Extensions.AI's ChatRole
        // values "system", "user", "assistant", "tool") to a Gemma 4 turn role. Gemma 4's chat
        // format (without tools) has no tool turn, so "tool" and unknown roles throw.
        public static string Normalize(string role)
        {
            if (role == null) throw new ArgumentNullException("role");
            switch (role.Trim().ToLowerInvariant())
            {
                case "system": case "developer": return System;
                case "user": return User;
                case "assistant": case "model": return Model;
                default:
                    throw new ArgumentException("role '" + role + "' has no Gemma 4 turn (system, user, assistant/model)", "role");
            }
        }
    }

    // Sampler and stopping settings for one generation. Every field is applied on every call,
    // so settings never leak from one call to the next on a reused session.
    public sealed class Gemma4GenerationOptions
    {
        public int MaxTokens = 256;
        // null or <= 0: greedy (argmax). > 0: sampling with TopK/TopP/MinP.
        public float? Temperature;
        public int? TopK;     // null or <= 0: off
        public float? TopP;   // null or >= 1: off
        public float? MinP;   // null or <= 0: off
        // null: the session's RNG continues from its current state.
        public ulong? Seed;
        // Hugging Face repetition penalty over the last RepetitionLastN tokens (<= 0: all).
        public float? RepetitionPenalty;
        public int RepetitionLastN;
        // Up to 16 stop strings; generation ends before the first one (it is not returned).
        public IList<string> Stop;

        public Gemma4GenerationOptions Clone()
        {
            var o = (Gemma4GenerationOptions)MemberwiseClone();
            if (Stop != null) o.Stop = new List<string>(Stop);
            return o;
        }
    }

    public enum Gemma4FinishReason
    {
        Stop,      // end of turn / end of sequence / stop string / callback asked to stop
        Length,    // MaxTokens reached or the context filled up
        ToolCalls, // the reply ended with tool calls (run them, send the results, call again)
        Cancelled,
    }

    public sealed class Gemma4Result
    {
        public string Text { get; internal set; }
        public int[] Tokens { get; internal set; }       // generated token ids, in order
        public int PromptTokens { get; internal set; }    // tokens run for the prompt (new ones only)
        public int GeneratedTokens { get; internal set; }
        public Gemma4FinishReason FinishReason { get; internal set; }
        public bool StoppedByCallback { get; internal set; }
    }

    // GEMMA4_SESSION_* keys.
    public enum Gemma4SessionInfo
    {
        NPast = 0, NCtx = 1, KvBytes = 2, NEvaluated = 3, LastPromptTokens = 4,
        LastGenTokens = 5, LastPromptMicroseconds = 6, LastGenMicroseconds = 7, Precision = 8,
    }

    // GEMMA4_PRECISION_*: how a session's matrix products treat activations. Fp32 (the default)
    // keeps them fp32; Bf16 gives llama.cpp's numerics for speed: activations rounded to bf16 in
    // the products with bf16 weights, quantized to 8 bits (Q8_0 / Q8_K) in those with GGUF
    // block-quantized weights, at about 1e-2 relative logit error (a few percent on quantized
    // weights; see gemma4_session_set_precision in gemma4.h).
    public enum Gemma4Precision { Fp32 = 0, Bf16 = 1 }
}
