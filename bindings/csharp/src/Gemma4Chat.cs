// Gemma4Chat.cs: chat with tools and thinking over gemma4_chat_complete. The library renders the
// conversation (tool declarations, tool calls and results, thinking) and parses the reply while
// it streams; these types carry messages in and events and results out, as JSON underneath.
//
//   var tools = new[] { new Gemma4Tool("get_weather", "Weather", "{\"type\":\"object\",...}") };
//   var r = session.ChatComplete(messages, tools, new Gemma4GenerationOptions(), ev => ..., ct);
//   if (r.FinishReason == Gemma4FinishReason.ToolCalls)
//       foreach (var call in r.ToolCalls) { ... messages.Add(Gemma4ChatMessage.ToolResult(call.Id, call.Name, result)); }
using System;
using System.Collections.Generic;
using System.Runtime.ExceptionServices;
using System.Runtime.InteropServices;
using System.Text;
using System.Threading;

namespace Gemma4
{
    public sealed class Gemma4ToolCall
    {
        public Gemma4ToolCall(string id, string name, IDictionary<string, object> arguments)
        {
            Id = id;
            Name = name ?? throw new ArgumentNullException("name");
            Arguments = arguments ?? new Dictionary<string, object>();
        }

        public string Id { get; private set; }
        public string Name { get; private set; }
        // Parsed JSON: string, long, double, bool, null, List<object>, Dictionary<string, object>.
        public IDictionary<string, object> Arguments { get; private set; }
        public string ArgumentsJson { get { return Gemma4Json.Write(Arguments); } }

        internal static Gemma4ToolCall FromJson(object parsed)
        {
            var d = parsed as IDictionary<string, object>;
            if (d == null) throw new FormatException("tool call: expected an object");
            object id, name, args;
            d.TryGetValue("id", out id);
            d.TryGetValue("name", out name);
            d.TryGetValue("arguments", out args);
            return new Gemma4ToolCall(id as string, name as string, args as IDictionary<string, object>);
        }
    }

    // One declared function: name, description, JSON schema of its parameters (JSON text).
    public sealed class Gemma4Tool
    {
        public Gemma4Tool(string name, string description, string parametersJsonSchema)
        {
            Name = name ?? throw new ArgumentNullException("name");
            Description = description ?? "";
            ParametersJsonSchema = parametersJsonSchema;
        }

        public string Name { get; private set; }
        public string Description { get; private set; }
        public string ParametersJsonSchema { get; private set; } // null: no parameters

        internal object ToJson()
        {
            var f = new Dictionary<string, object> { { "name", Name }, { "description", Description } };
            if (!string.IsNullOrEmpty(ParametersJsonSchema)) f["parameters"] = new Gemma4Json.Raw(ParametersJsonSchema);
            return new Dictionary<string, object> { { "type", "function" }, { "function", f } };
        }
    }

    // A message of a conversation with tools: text, the model's earlier reasoning and tool calls
    // (role "assistant"), or a tool's result (role "tool", with the call id and function name).
    public sealed class Gemma4ChatMessage
    {
        public Gemma4ChatMessage(string role, string content)
        {
            Role = role ?? throw new ArgumentNullException("role");
            Content = content;
            ToolCalls = new List<Gemma4ToolCall>();
        }

        public string Role { get; private set; }
        public string Content { get; set; }
        // A tool result as JSON text (an object renders key by key); used instead of Content.
        public string ContentJson { get; set; }
        public string ReasoningContent { get; set; }
        public IList<Gemma4ToolCall> ToolCalls { get; private set; }
        public string ToolCallId { get; set; }
        public string Name { get; set; }

        public static Gemma4ChatMessage System(string text) { return new Gemma4ChatMessage("system", text); }
        public static Gemma4ChatMessage User(string text) { return new Gemma4ChatMessage("user", text); }
        public static Gemma4ChatMessage Assistant(string text) { return new Gemma4ChatMessage("assistant", text); }

        // A tool's result: text (rendered as a string) or resultJson (any JSON value).
        public static Gemma4ChatMessage ToolResult(string callId, string name, string text, string resultJson = null)
        {
            return new Gemma4ChatMessage("tool", text) { ToolCallId = callId, Name = name, ContentJson = resultJson };
        }

        internal object ToJson()
        {
            var d = new Dictionary<string, object> { { "role", Role } };
            d["content"] = ContentJson != null ? (object)new Gemma4Json.Raw(ContentJson) : Content;
            if (!string.IsNullOrEmpty(ReasoningContent)) d["reasoning_content"] = ReasoningContent;
            if (ToolCalls.Count > 0)
            {
                var calls = new List<object>();
                foreach (Gemma4ToolCall c in ToolCalls)
                {
                    var call = new Dictionary<string, object> { { "type", "function" } };
                    if (c.Id != null) call["id"] = c.Id;
                    call["function"] = new Dictionary<string, object> { { "name", c.Name }, { "arguments", c.Arguments } };
                    calls.Add(call);
                }
                d["tool_calls"] = calls;
            }
            if (ToolCallId != null) d["tool_call_id"] = ToolCallId;
            if (Name != null) d["name"] = Name;
            return d;
        }

        // The conversation as the library's JSON (also what gemma4_chat_* take from C).
        public static string ToJson(IEnumerable<Gemma4ChatMessage> messages)
        {
            if (messages == null) throw new ArgumentNullException("messages");
            var list = new List<object>();
            int i = 0;
            foreach (Gemma4ChatMessage m in messages)
            {
                if (m == null) throw new ArgumentException("messages[" + i + "] is null", "messages");
                list.Add(m.ToJson());
                i++;
            }
            return Gemma4Json.Write(list);
        }

        // Tool declarations as JSON (null for none).
        public static string ToJson(IEnumerable<Gemma4Tool> tools)
        {
            if (tools == null) return null;
            var list = new List<object>();
            foreach (Gemma4Tool t in tools) list.Add(t.ToJson());
            return list.Count == 0 ? null : Gemma4Json.Write(list);
        }
    }

    public enum Gemma4ChatEventKind { Text = 0, Reasoning = 1, ToolCall = 2 }

    public sealed class Gemma4ChatEvent
    {
        internal Gemma4ChatEvent(Gemma4ChatEventKind kind, string text, Gemma4ToolCall call)
        {
            Kind = kind;
            Text = text;
            ToolCall = call;
        }

        public Gemma4ChatEventKind Kind { get; private set; }
        public string Text { get; private set; }           // Text / Reasoning
        public Gemma4ToolCall ToolCall { get; private set; } // ToolCall
    }

    public sealed class Gemma4ChatResult
    {
        public string Text { get; set; }
        public string Reasoning { get; set; } // null without thinking
        public IList<Gemma4ToolCall> ToolCalls { get; set; }
        public Gemma4FinishReason FinishReason { get; set; }
        public int PromptTokens { get; set; }     // the whole conversation
        public int CachedTokens { get; set; }     // of them, reused from the cache
        public int CompletionTokens { get; set; }
        public int TotalTokens { get { return PromptTokens + CompletionTokens; } }

        internal static Gemma4ChatResult FromJson(string json)
        {
            var d = (IDictionary<string, object>)Gemma4Json.Parse(json);
            var u = (IDictionary<string, object>)d["usage"];
            var calls = new List<Gemma4ToolCall>();
            foreach (object c in (IList<object>)d["tool_calls"]) calls.Add(Gemma4ToolCall.FromJson(c));
            Gemma4FinishReason reason;
            switch ((string)d["finish_reason"])
            {
                case "length": reason = Gemma4FinishReason.Length; break;
                case "tool_calls": reason = Gemma4FinishReason.ToolCalls; break;
                case "cancelled": reason = Gemma4FinishReason.Cancelled; break;
                default: reason = Gemma4FinishReason.Stop; break;
            }
            return new Gemma4ChatResult
            {
                Text = (string)d["content"],
                Reasoning = d["reasoning"] as string,
                ToolCalls = calls,
                FinishReason = reason,
                PromptTokens = (int)(long)u["prompt_tokens"],
                CachedTokens = (int)(long)u["cached_tokens"],
                CompletionTokens = (int)(long)u["completion_tokens"],
            };
        }
    }

    public sealed unsafe partial class Gemma4Session
    {
        // Chat completion with tools and thinking (gemma4_chat_complete): pass the whole
        // conversation every turn (the cached prefix is reused). options: sampling fields left
        // null take the model's generation_config.json defaults. onEvent (may be null) receives
        // text, reasoning and tool-call events on the calling thread and returns false to stop.
        public Gemma4ChatResult ChatComplete(IList<Gemma4ChatMessage> messages, IList<Gemma4Tool> tools,
                                             Gemma4GenerationOptions options, bool enableThinking = false,
                                             Func<Gemma4ChatEvent, bool> onEvent = null,
                                             CancellationToken cancellationToken = default(CancellationToken))
        {
            byte[] m = Utf8.NulTerminated(Gemma4ChatMessage.ToJson(messages), "messages");
            string toolsJson = Gemma4ChatMessage.ToJson(tools);
            byte[] t = toolsJson == null ? null : Utf8.NulTerminated(toolsJson, "tools");
            Gemma4GenerationOptions o = options ?? new Gemma4GenerationOptions();
            ConfigureChat(o);
            ClearStaleCancel();
            cancellationToken.ThrowIfCancellationRequested();
            Enter();
            try
            {
                Exception callbackError = null;
                bool stoppedByToken = false;
                NativeMethods.ChatEventFn thunk = (kind, text, len, user) =>
                {
                    try
                    {
                        int n = checked((int)(ulong)len);
                        byte[] bytes = new byte[n];
                        if (n > 0) Marshal.Copy(text, bytes, 0, n);
                        // whole, valid UTF-8 characters: the library holds partial ones back
                        string s = Utf8.Strict.GetString(bytes);
                        Gemma4ChatEvent ev = kind == 2
                            ? new Gemma4ChatEvent(Gemma4ChatEventKind.ToolCall, null, Gemma4ToolCall.FromJson(Gemma4Json.Parse(s)))
                            : new Gemma4ChatEvent((Gemma4ChatEventKind)kind, s, null);
                        if (onEvent != null && !onEvent(ev)) return 1;
                        if (cancellationToken.IsCancellationRequested)
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
                if (cancellationToken.CanBeCanceled) reg = cancellationToken.Register(() => Cancel());
                try
                {
                    fixed (byte* mp = m)
                    fixed (byte* tp = t)
                        st = NativeMethods.gemma4_chat_complete(Handle, mp, tp, enableThinking ? 4 : 0, o.MaxTokens, fp, IntPtr.Zero);
                    if (st != 0) message = Utf8.FromNative(NativeMethods.gemma4_last_error());
                }
                finally
                {
                    reg.Dispose();
                    GC.KeepAlive(thunk);
                }
                if (callbackError != null) ExceptionDispatchInfo.Capture(callbackError).Throw();
                if (stoppedByToken || (st == (int)Gemma4Status.Cancelled && cancellationToken.IsCancellationRequested))
                    throw new OperationCanceledException("chat completion cancelled", cancellationToken);
                if (st != 0) throw new Gemma4Exception((Gemma4Status)st, message);
                return Gemma4ChatResult.FromJson(ReadChatResult());
            }
            finally { Exit(); }
        }

        string ReadChatResult()
        {
            UIntPtr n;
            Gemma4Exception.Check(NativeMethods.gemma4_chat_result(Handle, null, UIntPtr.Zero, &n));
            byte[] buf = new byte[(int)n + 1];
            fixed (byte* b = buf)
                Gemma4Exception.Check(NativeMethods.gemma4_chat_result(Handle, b, (UIntPtr)buf.Length, &n));
            return Utf8.Strict.GetString(buf, 0, (int)n);
        }

        // Sampling for one chat request: the model's defaults, with the given fields on top
        // (Temperature 0 is greedy); penalty, seed and stops as Configure.
        void ConfigureChat(Gemma4GenerationOptions o)
        {
            Simple(h => NativeMethods.gemma4_session_reset_sampling(h));
            if (o.Temperature.HasValue || o.TopK.HasValue || o.TopP.HasValue || o.MinP.HasValue)
            {
                float temp, topP, minP;
                int topK;
                Enter();
                try { Gemma4Exception.Check(NativeMethods.gemma4_session_get_sampling(Handle, &temp, &topK, &topP, &minP)); }
                finally { Exit(); }
                temp = o.Temperature ?? temp;
                if (temp <= 0) SetGreedy();
                else SetSampling(temp, o.TopK ?? topK, o.TopP ?? topP, o.MinP ?? minP);
            }
            SetRepetitionPenalty(o.RepetitionPenalty ?? 1f, o.RepetitionLastN);
            if (o.Seed.HasValue) SetSeed(o.Seed.Value);
            ClearStops();
            if (o.Stop != null)
                foreach (string s in o.Stop) AddStop(s);
        }

        // Testing aid (gemma4_session_force_tokens): the next generation takes these tokens.
        public void ForceTokens(int[] tokens)
        {
            if (tokens == null) throw new ArgumentNullException("tokens");
            Enter();
            try
            {
                fixed (int* p = tokens)
                    Gemma4Exception.Check(NativeMethods.gemma4_session_force_tokens(Handle, p, (UIntPtr)tokens.Length));
            }
            finally { Exit(); }
        }
    }

    public sealed unsafe partial class Gemma4Model
    {
        // The prompt text transformers' apply_chat_template(messages, tools=...) renders.
        public string RenderChat(IList<Gemma4ChatMessage> messages, IList<Gemma4Tool> tools = null,
                                 bool addGenerationPrompt = true, bool enableThinking = false)
        {
            byte[] m = Utf8.NulTerminated(Gemma4ChatMessage.ToJson(messages), "messages");
            string toolsJson = Gemma4ChatMessage.ToJson(tools);
            byte[] t = toolsJson == null ? null : Utf8.NulTerminated(toolsJson, "tools");
            int flags = (addGenerationPrompt ? 1 : 0) | (enableThinking ? 4 : 0);
            UIntPtr n;
            fixed (byte* mp = m)
            fixed (byte* tp = t)
            {
                Gemma4Exception.Check(NativeMethods.gemma4_chat_render_json(Handle, mp, tp, flags, null, UIntPtr.Zero, &n));
                byte[] buf = new byte[(int)n + 1];
                fixed (byte* b = buf)
                    Gemma4Exception.Check(NativeMethods.gemma4_chat_render_json(Handle, mp, tp, flags, b, (UIntPtr)buf.Length, &n));
                return Utf8.Strict.GetString(buf, 0, (int)n);
            }
        }
    }
}
