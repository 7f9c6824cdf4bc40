// Gemma4ChatTests.cs: chat with tools and thinking from C#, and the IChatClient adapter's logic
// (Gemma4ChatAdapter, plain C#). Replies are forced with Session.ForceTokens on the tiny e2b
// fixture so that they hold thinking and tool calls. Part of the test program of Gemma4Tests.cs.
using System;
using System.Collections.Generic;
using System.IO;
using System.Linq;
using System.Threading;
using Gemma4;

static partial class Gemma4Tests
{
    static readonly Gemma4Tool Weather = new Gemma4Tool("get_weather", "Weather",
        "{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}},\"required\":[\"city\"]}");

    static void JsonWriteParse()
    {
        var v = new Dictionary<string, object>
        {
            { "s", "a\"b\\\n\u00e9\u0001" }, { "i", 3L }, { "d", 0.5 }, { "f", 1.0 }, { "b", true }, { "n", null },
            { "l", new List<object> { 1L, "x", new Dictionary<string, object>() } },
        };
        string js = Gemma4Json.Write(v);
        Equal("{\"s\":\"a\\\"b\\\\\\n\u00e9\\u0001\",\"i\":3,\"d\":0.5,\"f\":1.0,\"b\":true,\"n\":null,\"l\":[1,\"x\",{}]}", js, "write");
        var back = (IDictionary<string, object>)Gemma4Json.Parse(js);
        Equal("a\"b\\\n\u00e9\u0001", (string)back["s"], "string round trip");
        Equal(3L, (long)back["i"], "int");
        Equal(1.0, (double)back["f"], "float stays a double");
        Equal(null, back["n"], "null");
        Equal(3, ((IList<object>)back["l"]).Count, "list");
        Equal("\u00fc\ud83c\udf0d", (string)Gemma4Json.Parse("\"\\u00fc\\ud83c\\udf0d\""), "\\u escapes and surrogates");
        foreach (string bad in new[] { "{", "[1,]", "{\"a\" 1}", "\"x", "1 2", "tru" })
        {
            bool threw = false;
            try { Gemma4Json.Parse(bad); } catch (FormatException) { threw = true; }
            Assert(threw, "'" + bad + "' is rejected");
        }
    }

    static void Force(Gemma4Model m, Gemma4Session s, string text)
    {
        s.ForceTokens(m.Tokenize(text));
    }

    static void ChatToolCallRoundTrip()
    {
        using (Gemma4Model m = Load("e2b", 512))
        using (Gemma4Session s = m.CreateSession(512))
        {
            var conv = new List<Gemma4ChatMessage> { Gemma4ChatMessage.User("Weather in Paris?") };
            Force(m, s, "<|channel>thought\nNeed it.<channel|><|tool_call>call:get_weather{city:<|\"|>Paris<|\"|>}<tool_call|><|tool_response>");
            var events = new List<Gemma4ChatEvent>();
            Gemma4ChatResult r = s.ChatComplete(conv, new[] { Weather }, null, true, ev => { events.Add(ev); return true; });
            Equal(Gemma4FinishReason.ToolCalls, r.FinishReason, "finish reason");
            Equal("Need it.", r.Reasoning, "reasoning");
            Equal("", r.Text, "no text");
            Equal(1, r.ToolCalls.Count, "one call");
            Equal("call_0", r.ToolCalls[0].Id, "call id");
            Equal("get_weather", r.ToolCalls[0].Name, "call name");
            Equal("Paris", (string)r.ToolCalls[0].Arguments["city"], "arguments");
            Assert(events.Count(e => e.Kind == Gemma4ChatEventKind.Reasoning) >= 2, "reasoning streamed in pieces");
            Equal(1, events.Count(e => e.Kind == Gemma4ChatEventKind.ToolCall), "one call event");
            Assert(r.PromptTokens > 0 && r.CompletionTokens > 0 && r.CachedTokens == 0, "usage");
            // the call and its result go back; the answer reuses the cache
            var a = Gemma4ChatMessage.Assistant(null);
            a.ReasoningContent = r.Reasoning;
            a.ToolCalls.Add(r.ToolCalls[0]);
            conv.Add(a);
            conv.Add(Gemma4ChatMessage.ToolResult("call_0", "get_weather", null, "{\"temp\":21,\"sky\":\"clear\"}"));
            // thinking on: the prompt after tool results opens the thought channel itself
            Force(m, s, "It is clear.<channel|>Clear, 21.<turn|>");
            Gemma4ChatResult r2 = s.ChatComplete(conv, new[] { Weather }, null, true);
            Equal("It is clear.", r2.Reasoning, "reasoning after the tool result");
            Equal("Clear, 21.", r2.Text, "answer");
            Equal(Gemma4FinishReason.Stop, r2.FinishReason, "stop");
            Assert(r2.CachedTokens > r.PromptTokens, "turn 2 reuses turn 1's prompt and reply (" + r2.CachedTokens + ")");
            string text = m.RenderChat(conv, new[] { Weather }, true, true);
            Assert(text.Contains("<|tool_response>response:get_weather{sky:<|\"|>clear<|\"|>,temp:21}<tool_response|>"),
                   "tool result rendered key by key: " + text);
            // errors: a bad role names the message
            Throws(Gemma4Status.InvalidArgument, "unknown role", () =>
                s.ChatComplete(new[] { new Gemma4ChatMessage("robot", "x") }, null, null));
        }
    }

    static void ChatStreamEvents()
    {
        using (Gemma4Model m = Load("e2b", 512))
        using (var chat = new Gemma4ChatSession(m, 512))
        {
            var conv = new List<Gemma4ChatMessage> { Gemma4ChatMessage.User("Hi") };
            // force through the conversation's session (created by a first, empty turn)
            chat.CompleteChat("c", conv, null, new Gemma4GenerationOptions { MaxTokens = 0 });
            Gemma4Session s = null;
            var field = typeof(Gemma4ChatSession).GetField("map", System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Instance);
            foreach (System.Collections.DictionaryEntry kv in (System.Collections.IDictionary)field.GetValue(chat))
                s = (Gemma4Session)kv.Value.GetType().GetField("Session", System.Reflection.BindingFlags.NonPublic | System.Reflection.BindingFlags.Instance).GetValue(kv.Value);
            Force(m, s, "Grüße 🌍 aus Köln!<|tool_call>call:get_weather{city:<|\"|>Köln<|\"|>}<tool_call|><|tool_response>");
            var kinds = new List<Gemma4ChatEventKind>();
            string text = "";
            using (Gemma4ChatEventStream st = chat.StreamChat("c", conv, new[] { Weather }))
            {
                foreach (Gemma4ChatEvent ev in st)
                {
                    kinds.Add(ev.Kind);
                    if (ev.Kind == Gemma4ChatEventKind.Text) text += ev.Text;
                    if (ev.Kind == Gemma4ChatEventKind.ToolCall) Equal("Köln", (string)ev.ToolCall.Arguments["city"], "call args");
                }
                Equal(Gemma4FinishReason.ToolCalls, st.Result.FinishReason, "finish");
            }
            Equal("Grüße 🌍 aus Köln!", text, "text streamed whole characters");
            Assert(kinds.Count(k => k == Gemma4ChatEventKind.Text) > 1, "text in pieces");
            Equal(Gemma4ChatEventKind.ToolCall, kinds.Last(), "call event last");
            // cancellation leaves the conversation usable
            var cts = new CancellationTokenSource();
            cts.Cancel();
            ThrowsCancelled(() => chat.CompleteChat("c", conv, null, null, false, null, cts.Token));
            Force(m, s, "ok<turn|>");
            Equal("ok", chat.CompleteChat("c", conv).Text, "usable after a cancel");
        }
    }

    static void ChatRenderMatchesTransformers()
    {
        // case "call_response_then_answer" of tests/chat/expected_tools.jsonl, rebuilt in C#
        string root = Path.GetFullPath(Path.Combine(golden, "..", ".."));
        string line = File.ReadAllLines(Path.Combine(root, "tests", "chat", "expected_tools.jsonl"))
            .First(l => l.Contains("\"name\": \"call_response_then_answer\"") && l.Contains("\"template\": \"e2b\""));
        var expected = (string)((IDictionary<string, object>)Gemma4Json.Parse(line))["expected"];
        var weather = new Gemma4Tool("get_weather", "Current weather for a city.",
            "{\"type\": \"object\", \"properties\": {\"city\": {\"type\": \"string\", \"description\": \"City name\"}, " +
            "\"unit\": {\"type\": \"string\", \"enum\": [\"celsius\", \"fahrenheit\"], \"description\": \"Unit\"}}, \"required\": [\"city\"]}");
        var call = Gemma4ChatMessage.Assistant(null);
        call.ToolCalls.Add(new Gemma4ToolCall("c1", "get_weather", new Dictionary<string, object> { { "city", "Paris" }, { "unit", "celsius" } }));
        var conv = new List<Gemma4ChatMessage>
        {
            Gemma4ChatMessage.User("Weather?"), call, Gemma4ChatMessage.ToolResult("c1", null, "Sunny"),
            Gemma4ChatMessage.Assistant("It is sunny in Paris."), Gemma4ChatMessage.User("Thanks!"),
        };
        using (Gemma4Model m = Load("e2b", 256))
            Equal(expected, m.RenderChat(conv, new[] { weather }), "text equals transformers'");
    }

    static void AdapterMessages()
    {
        var args = new Dictionary<string, object> { { "city", "Paris" } };
        var msgs = Gemma4ChatAdapter.ToMessages(new[]
        {
            new Gemma4AdapterMessage("system", new[] { Gemma4Content.FromText("Be brief.") }),
            new Gemma4AdapterMessage("user", new[] { Gemma4Content.FromText("Weather "), Gemma4Content.FromText("in Paris and Rome?") }),
            new Gemma4AdapterMessage("assistant", new[]
            {
                Gemma4Content.FromReasoning("two calls"), Gemma4Content.FromCall("a", "get_weather", args),
                Gemma4Content.FromCall("b", "get_time", null),
            }),
            new Gemma4AdapterMessage("tool", new[]
            {
                Gemma4Content.FromResult("b", "12:00", null), Gemma4Content.FromResult("a", null, "{\"temp\":21}"),
            }),
        });
        Equal(5, msgs.Count, "one tool turn per result");
        Equal("in Paris and Rome?", msgs[1].Content.Substring(8), "text parts joined");
        Equal(null, msgs[2].Content, "assistant with calls only: no content");
        Equal("two calls", msgs[2].ReasoningContent, "reasoning kept for the template to decide");
        Equal(2, msgs[2].ToolCalls.Count, "calls");
        Equal("get_time", msgs[3].Name, "result b -> get_time by call id");
        Equal("12:00", msgs[3].Content, "string result as text");
        Equal("get_weather", msgs[4].Name, "result a -> get_weather");
        Equal("{\"temp\":21}", msgs[4].ContentJson, "JSON result");
        string js = Gemma4ChatMessage.ToJson(msgs);
        Assert(js.Contains("\"tool_call_id\":\"a\",\"name\":\"get_weather\""), js);
        bool threw = false;
        try
        {
            Gemma4ChatAdapter.ToMessages(new[] { new Gemma4AdapterMessage("tool", new[] { Gemma4Content.FromResult("zz", "x", null) }) });
        }
        catch (ArgumentException e) { threw = e.Message.Contains("'zz'"); }
        Assert(threw, "a result for an unknown call id is an error naming it");
        threw = false;
        try { Gemma4ChatAdapter.ToMessages(new[] { new Gemma4AdapterMessage("narrator", null) }); }
        catch (ArgumentException e) { threw = e.Message.Contains("narrator"); }
        Assert(threw, "unknown role");
    }

    static void AdapterOptionsAndToolMode()
    {
        Gemma4GenerationOptions g = Gemma4ChatAdapter.ToGenerationOptions(null);
        Equal(Gemma4ChatAdapter.DefaultMaxOutputTokens, g.MaxTokens, "default max tokens");
        Equal(null, g.Temperature, "unset temperature: the model's default");
        var o = new Gemma4AdapterOptions
        {
            Temperature = 0.7f, TopP = 0.9f, TopK = 40, MaxOutputTokens = 12, Seed = -1,
            StopSequences = new[] { "END" },
            AdditionalProperties = new Dictionary<string, object> { { "repetition_penalty", 1.1 }, { "min_p", 0.05f }, { "enable_thinking", true } },
            Tools = new[] { Weather, new Gemma4Tool("get_time", "Time", null) },
        };
        g = Gemma4ChatAdapter.ToGenerationOptions(o);
        Equal(0.7f, g.Temperature.Value, "temperature");
        Equal(0.9f, g.TopP.Value, "top_p");
        Equal(40, g.TopK.Value, "top_k");
        Equal(12, g.MaxTokens, "max tokens");
        Equal(ulong.MaxValue, g.Seed.Value, "seed bits");
        Equal("END", g.Stop[0], "stop");
        Equal(1.1f, g.RepetitionPenalty.Value, "repetition penalty");
        Equal(0.05f, g.MinP.Value, "min_p");
        Assert(Gemma4ChatAdapter.EnableThinking(o), "enable_thinking");
        Equal(2, Gemma4ChatAdapter.SelectTools(o).Count, "auto: all tools");
        o.ToolMode = Gemma4ToolMode.None;
        Equal(null, Gemma4ChatAdapter.SelectTools(o), "none: no tools");
        o.ToolMode = Gemma4ToolMode.RequireSpecific;
        o.RequiredFunctionName = "get_time";
        Equal("get_time", Gemma4ChatAdapter.SelectTools(o).Single().Name, "require one: only it");
        o.RequiredFunctionName = "nope";
        bool threw = false;
        try { Gemma4ChatAdapter.SelectTools(o); } catch (ArgumentException) { threw = true; }
        Assert(threw, "requiring an undeclared function is an error");
        string tools = Gemma4ChatMessage.ToJson(new[] { Weather });
        Equal("[{\"type\":\"function\",\"function\":{\"name\":\"get_weather\",\"description\":\"Weather\",\"parameters\":" +
              "{\"type\":\"object\",\"properties\":{\"city\":{\"type\":\"string\"}},\"required\":[\"city\"]}}}]", tools, "tools JSON");
    }

    static void AdapterResultContents()
    {
        var r = new Gemma4ChatResult
        {
            Text = "Checking.", Reasoning = "think",
            ToolCalls = new List<Gemma4ToolCall> { new Gemma4ToolCall("call_0", "f", null) },
            FinishReason = Gemma4FinishReason.ToolCalls, PromptTokens = 10, CachedTokens = 4, CompletionTokens = 3,
        };
        var c = Gemma4ChatAdapter.ToContents(r);
        Equal(3, c.Count, "reasoning, text, call");
        Equal(Gemma4ContentKind.Reasoning, c[0].Kind, "reasoning first");
        Equal(Gemma4ContentKind.FunctionCall, c[2].Kind, "call last");
        Equal("call_0", c[2].CallId, "call id");
        var u = Gemma4ChatAdapter.Usage(r);
        Equal(10, u.InputTokens, "input");
        Equal(4, u.CachedInputTokens, "cached");
        Equal(3, u.OutputTokens, "output");
        Equal("tool_calls", Gemma4ChatAdapter.FinishReason(r.FinishReason), "finish");
        Equal("length", Gemma4ChatAdapter.FinishReason(Gemma4FinishReason.Length), "length");
        Equal("stop", Gemma4ChatAdapter.FinishReason(Gemma4FinishReason.Stop), "stop");
    }
}
