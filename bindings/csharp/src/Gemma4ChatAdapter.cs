// Gemma4ChatAdapter.cs: the logic of the Microsoft.Extensions.AI IChatClient adapter, in plain
// C# that Mono compiles and tests. Gemma4.Extensions.AI/Gemma4ChatClient.cs only maps M.E.AI's
// types 1:1 onto the neutral ones here:
//   ChatMessage (Role, Contents)            -> Gemma4AdapterMessage (Role, Gemma4Content list)
//   TextContent / TextReasoningContent      -> Gemma4Content Text / Reasoning
//   FunctionCallContent (CallId, Name, Arguments) -> FunctionCall
//   FunctionResultContent (CallId, Result)  -> FunctionResult (result text or JSON)
//   ChatOptions (Temperature, TopP, TopK, MaxOutputTokens, StopSequences, Seed, Tools as
//     AIFunction declarations, ToolMode, AdditionalProperties) -> Gemma4AdapterOptions
// and back: events and results -> Gemma4Content (Text, Reasoning, FunctionCall, Usage).
using System;
using System.Collections.Generic;
using System.Globalization;
using System.Text;

namespace Gemma4
{
    public enum Gemma4ContentKind { Text, Reasoning, FunctionCall, FunctionResult, Usage }

    public sealed class Gemma4Content
    {
        public Gemma4ContentKind Kind;
        public string Text;                              // Text, Reasoning; FunctionResult as text
        public string CallId;                            // FunctionCall, FunctionResult
        public string Name;                              // FunctionCall
        public IDictionary<string, object> Arguments;    // FunctionCall
        public string ResultJson;                        // FunctionResult as JSON (not a string)
        public int InputTokens, CachedInputTokens, OutputTokens; // Usage

        public static Gemma4Content FromText(string text) { return new Gemma4Content { Kind = Gemma4ContentKind.Text, Text = text }; }
        public static Gemma4Content FromReasoning(string text) { return new Gemma4Content { Kind = Gemma4ContentKind.Reasoning, Text = text }; }
        public static Gemma4Content FromCall(string callId, string name, IDictionary<string, object> args)
        {
            return new Gemma4Content { Kind = Gemma4ContentKind.FunctionCall, CallId = callId, Name = name, Arguments = args };
        }
        // result: a string stays text; resultJson (any JSON value) otherwise.
        public static Gemma4Content FromResult(string callId, string text, string resultJson)
        {
            return new Gemma4Content { Kind = Gemma4ContentKind.FunctionResult, CallId = callId, Text = text, ResultJson = resultJson };
        }
    }

    public sealed class Gemma4AdapterMessage
    {
        public Gemma4AdapterMessage(string role, IEnumerable<Gemma4Content> contents)
        {
            Role = role ?? throw new ArgumentNullException("role");
            Contents = new List<Gemma4Content>(contents ?? new Gemma4Content[0]);
        }
        public string Role { get; private set; }
        public IList<Gemma4Content> Contents { get; private set; }
    }

    public enum Gemma4ToolMode { Auto, None, RequireAny, RequireSpecific }

    public sealed class Gemma4AdapterOptions
    {
        public float? Temperature, TopP;
        public int? TopK, MaxOutputTokens;
        public long? Seed;
        public IList<string> StopSequences;
        public IList<Gemma4Tool> Tools;
        public Gemma4ToolMode ToolMode;
        public string RequiredFunctionName; // RequireSpecific
        public IDictionary<string, object> AdditionalProperties;
    }

    public static class Gemma4ChatAdapter
    {
        public const int DefaultMaxOutputTokens = 1024;

        // M.E.AI messages -> the library's conversation. A "tool" message carries one or more
        // FunctionResultContent: each becomes one tool turn, its function name resolved from the
        // call with the same id earlier in the conversation.
        public static List<Gemma4ChatMessage> ToMessages(IEnumerable<Gemma4AdapterMessage> messages)
        {
            if (messages == null) throw new ArgumentNullException("messages");
            var outList = new List<Gemma4ChatMessage>();
            var callNames = new Dictionary<string, string>();
            int i = 0;
            foreach (Gemma4AdapterMessage m in messages)
            {
                if (m == null) throw new ArgumentException("messages[" + i + "] is null", "messages");
                string role = m.Role.Trim().ToLowerInvariant();
                var text = new StringBuilder();
                var reasoning = new StringBuilder();
                var calls = new List<Gemma4ToolCall>();
                var results = new List<Gemma4Content>();
                foreach (Gemma4Content c in m.Contents)
                {
                    if (c == null) continue;
                    switch (c.Kind)
                    {
                        case Gemma4ContentKind.Text: text.Append(c.Text); break;
                        case Gemma4ContentKind.Reasoning: reasoning.Append(c.Text); break;
                        case Gemma4ContentKind.FunctionCall:
                            calls.Add(new Gemma4ToolCall(c.CallId, c.Name, c.Arguments));
                            if (c.CallId != null) callNames[c.CallId] = c.Name;
                            break;
                        case Gemma4ContentKind.FunctionResult: results.Add(c); break;
                    }
                }
                switch (role)
                {
                    case "system": case "developer": case "user":
                        outList.Add(new Gemma4ChatMessage(role, text.ToString()));
                        break;
                    case "assistant": case "model":
                    {
                        var a = new Gemma4ChatMessage("assistant", text.Length > 0 || calls.Count == 0 ? text.ToString() : null);
                        if (reasoning.Length > 0) a.ReasoningContent = reasoning.ToString();
                        foreach (Gemma4ToolCall tc in calls) a.ToolCalls.Add(tc);
                        outList.Add(a);
                        break;
                    }
                    case "tool":
                        if (results.Count == 0)
                            throw new ArgumentException("messages[" + i + "]: a tool message needs FunctionResultContent", "messages");
                        foreach (Gemma4Content r in results)
                        {
                            string name;
                            if (r.CallId == null || !callNames.TryGetValue(r.CallId, out name))
                                throw new ArgumentException("messages[" + i + "]: no earlier function call has id '" + r.CallId + "'", "messages");
                            outList.Add(Gemma4ChatMessage.ToolResult(r.CallId, name, r.ResultJson == null ? (r.Text ?? "") : null, r.ResultJson));
                        }
                        break;
                    default:
                        throw new ArgumentException("messages[" + i + "]: role '" + m.Role + "' has no Gemma 4 turn (system, user, assistant, tool)", "messages");
                }
                i++;
            }
            return outList;
        }

        // ChatOptions -> generation settings. Unset sampling fields take the model's
        // generation_config.json defaults. FrequencyPenalty / PresencePenalty (additive, OpenAI
        // style) have no equivalent; AdditionalProperties may carry "repetition_penalty",
        // "repetition_last_n", "min_p" and "enable_thinking".
        public static Gemma4GenerationOptions ToGenerationOptions(Gemma4AdapterOptions o)
        {
            var g = new Gemma4GenerationOptions { MaxTokens = DefaultMaxOutputTokens };
            if (o == null) return g;
            if (o.MaxOutputTokens.HasValue)
            {
                if (o.MaxOutputTokens.Value < 0) throw new ArgumentOutOfRangeException("MaxOutputTokens");
                g.MaxTokens = o.MaxOutputTokens.Value;
            }
            g.Temperature = o.Temperature;
            g.TopK = o.TopK;
            g.TopP = o.TopP;
            if (o.Seed.HasValue) g.Seed = unchecked((ulong)o.Seed.Value);
            if (o.StopSequences != null) g.Stop = new List<string>(o.StopSequences);
            object v;
            if (o.AdditionalProperties != null)
            {
                if (o.AdditionalProperties.TryGetValue("repetition_penalty", out v)) g.RepetitionPenalty = Convert.ToSingle(v, CultureInfo.InvariantCulture);
                if (o.AdditionalProperties.TryGetValue("repetition_last_n", out v)) g.RepetitionLastN = Convert.ToInt32(v, CultureInfo.InvariantCulture);
                if (o.AdditionalProperties.TryGetValue("min_p", out v)) g.MinP = Convert.ToSingle(v, CultureInfo.InvariantCulture);
            }
            return g;
        }

        public static bool EnableThinking(Gemma4AdapterOptions o)
        {
            object v;
            return o != null && o.AdditionalProperties != null &&
                   o.AdditionalProperties.TryGetValue("enable_thinking", out v) && v is bool && (bool)v;
        }

        // ToolMode: None declares no tools; Auto and RequireAny declare all (Gemma 4 has no
        // constrained decoding: "require" is not enforced, the model may still answer in text);
        // RequireSpecific declares only the named function.
        public static IList<Gemma4Tool> SelectTools(Gemma4AdapterOptions o)
        {
            if (o == null || o.Tools == null || o.Tools.Count == 0 || o.ToolMode == Gemma4ToolMode.None) return null;
            if (o.ToolMode != Gemma4ToolMode.RequireSpecific) return o.Tools;
            foreach (Gemma4Tool t in o.Tools)
                if (t.Name == o.RequiredFunctionName) return new List<Gemma4Tool> { t };
            throw new ArgumentException("ToolMode requires '" + o.RequiredFunctionName + "', which is not among the tools");
        }

        public static Gemma4Content ToContent(Gemma4ChatEvent ev)
        {
            switch (ev.Kind)
            {
                case Gemma4ChatEventKind.Reasoning: return Gemma4Content.FromReasoning(ev.Text);
                case Gemma4ChatEventKind.ToolCall: return Gemma4Content.FromCall(ev.ToolCall.Id, ev.ToolCall.Name, ev.ToolCall.Arguments);
                default: return Gemma4Content.FromText(ev.Text);
            }
        }

        // The reply as contents: reasoning first, then text, then the calls.
        public static List<Gemma4Content> ToContents(Gemma4ChatResult r)
        {
            var list = new List<Gemma4Content>();
            if (!string.IsNullOrEmpty(r.Reasoning)) list.Add(Gemma4Content.FromReasoning(r.Reasoning));
            if (!string.IsNullOrEmpty(r.Text)) list.Add(Gemma4Content.FromText(r.Text));
            foreach (Gemma4ToolCall c in r.ToolCalls) list.Add(Gemma4Content.FromCall(c.Id, c.Name, c.Arguments));
            return list;
        }

        public static Gemma4Content Usage(Gemma4ChatResult r)
        {
            return new Gemma4Content
            {
                Kind = Gemma4ContentKind.Usage,
                InputTokens = r.PromptTokens,
                CachedInputTokens = r.CachedTokens,
                OutputTokens = r.CompletionTokens,
            };
        }

        // ChatFinishReason values: "stop", "length", "tool_calls".
        public static string FinishReason(Gemma4FinishReason f)
        {
            switch (f)
            {
                case Gemma4FinishReason.Length: return "length";
                case Gemma4FinishReason.ToolCalls: return "tool_calls";
                default: return "stop";
            }
        }
    }
}
