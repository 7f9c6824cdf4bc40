// Gemma4ChatClient.cs: Microsoft.Extensions.AI IChatClient over Gemma4ChatSession.
//
// NOT COMPILED OR TESTED HERE: it needs the Microsoft.Extensions.AI.Abstractions package (9.x)
// and modern .NET, and this machine has neither a .NET SDK nor NuGet. It is deliberately thin:
// every decision (message and tool-result mapping, call-id -> function-name resolution, options,
// ToolMode, thinking, events -> contents, usage, finish reasons) lives in
// bindings/csharp/src/Gemma4ChatAdapter.cs, which Mono compiles and tests. This file only maps
// M.E.AI's types 1:1 onto those neutral types and back.
//
// Tool calls come back as FunctionCallContent and FunctionResultContent is accepted in "tool"
// messages, so FunctionInvokingChatClient works: wrap with new ChatClientBuilder(client)
// .UseFunctionInvocation().Build(). Reasoning streams as TextReasoningContent. ConversationId is
// never echoed: a non-null one tells callers the service keeps the history, and this adapter
// needs the whole history every turn (it reuses the cached prefix itself). A request's
// ConversationId, when given, only picks which cached session serves it.
using System;
using System.Collections.Generic;
using System.Linq;
using System.Runtime.CompilerServices;
using System.Text.Json;
using System.Threading;
using System.Threading.Tasks;
using Microsoft.Extensions.AI;

namespace Gemma4.Extensions.AI
{
    public sealed class Gemma4ChatClient : IChatClient
    {
        readonly Gemma4ChatSession chat;
        readonly bool ownsChat;
        readonly ChatClientMetadata metadata;

        public Gemma4ChatClient(Gemma4ChatSession chat, string modelId = null, bool ownsChat = false)
        {
            this.chat = chat ?? throw new ArgumentNullException(nameof(chat));
            this.ownsChat = ownsChat;
            metadata = new ChatClientMetadata("gemma4", null, modelId ?? chat.Model.Variant);
        }

        public async Task<ChatResponse> GetResponseAsync(IEnumerable<ChatMessage> messages, ChatOptions options = null,
                                                         CancellationToken cancellationToken = default)
        {
            Gemma4AdapterOptions o = ToAdapter(options);
            List<Gemma4ChatMessage> conv = Gemma4ChatAdapter.ToMessages(messages.Select(ToAdapter));
            Gemma4ChatResult r = await Task.Run(() => chat.CompleteChat(options?.ConversationId, conv,
                Gemma4ChatAdapter.SelectTools(o), Gemma4ChatAdapter.ToGenerationOptions(o),
                Gemma4ChatAdapter.EnableThinking(o), null, cancellationToken), cancellationToken).ConfigureAwait(false);
            var message = new ChatMessage(ChatRole.Assistant, Gemma4ChatAdapter.ToContents(r).Select(FromAdapter).ToList());
            return new ChatResponse(message)
            {
                ModelId = metadata.DefaultModelId,
                FinishReason = new ChatFinishReason(Gemma4ChatAdapter.FinishReason(r.FinishReason)),
                Usage = ToUsage(Gemma4ChatAdapter.Usage(r)),
            };
        }

        public async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(
            IEnumerable<ChatMessage> messages, ChatOptions options = null,
            [EnumeratorCancellation] CancellationToken cancellationToken = default)
        {
            Gemma4AdapterOptions o = ToAdapter(options);
            List<Gemma4ChatMessage> conv = Gemma4ChatAdapter.ToMessages(messages.Select(ToAdapter));
            string responseId = Guid.NewGuid().ToString("N");
            using (Gemma4ChatEventStream stream = chat.StreamChat(options?.ConversationId, conv,
                       Gemma4ChatAdapter.SelectTools(o), Gemma4ChatAdapter.ToGenerationOptions(o),
                       Gemma4ChatAdapter.EnableThinking(o), cancellationToken))
            {
                while (await stream.MoveNextAsync(cancellationToken).ConfigureAwait(false))
                    yield return new ChatResponseUpdate(ChatRole.Assistant, new List<AIContent> { FromAdapter(Gemma4ChatAdapter.ToContent(stream.Current)) })
                    {
                        ResponseId = responseId,
                        ModelId = metadata.DefaultModelId,
                    };
                Gemma4ChatResult r = stream.Result;
                yield return new ChatResponseUpdate(ChatRole.Assistant, new List<AIContent> { new UsageContent(ToUsage(Gemma4ChatAdapter.Usage(r))) })
                {
                    ResponseId = responseId,
                    ModelId = metadata.DefaultModelId,
                    FinishReason = new ChatFinishReason(Gemma4ChatAdapter.FinishReason(r.FinishReason)),
                };
            }
        }

        public object GetService(Type serviceType, object serviceKey = null)
        {
            if (serviceType == null) throw new ArgumentNullException(nameof(serviceType));
            if (serviceKey != null) return null;
            if (serviceType == typeof(ChatClientMetadata)) return metadata;
            if (serviceType == typeof(Gemma4ChatSession)) return chat;
            if (serviceType == typeof(Gemma4Model)) return chat.Model;
            return serviceType.IsInstanceOfType(this) ? this : null;
        }

        public void Dispose()
        {
            if (ownsChat) chat.Dispose();
        }

        // ---- 1:1 type mapping (all logic is in Gemma4ChatAdapter) ----

        static Gemma4AdapterMessage ToAdapter(ChatMessage m)
        {
            var contents = new List<Gemma4Content>();
            foreach (AIContent c in m.Contents)
            {
                switch (c)
                {
                    case TextContent t: contents.Add(Gemma4Content.FromText(t.Text)); break;
                    case TextReasoningContent r: contents.Add(Gemma4Content.FromReasoning(r.Text)); break;
                    case FunctionCallContent f:
                        contents.Add(Gemma4Content.FromCall(f.CallId, f.Name, f.Arguments == null ? null
                            : new Dictionary<string, object>(f.Arguments.Select(kv => new KeyValuePair<string, object>(kv.Key, ToPlain(kv.Value))))));
                        break;
                    case FunctionResultContent fr:
                        contents.Add(fr.Result is string s ? Gemma4Content.FromResult(fr.CallId, s, null)
                                                           : Gemma4Content.FromResult(fr.CallId, null, JsonSerializer.Serialize(fr.Result)));
                        break;
                }
            }
            return new Gemma4AdapterMessage(m.Role.Value, contents);
        }

        // JsonElement arguments (as M.E.AI deserializes them) -> plain values Gemma4Json writes.
        static object ToPlain(object v)
        {
            return v is JsonElement e ? Gemma4Json.Parse(e.GetRawText()) : v;
        }

        static AIContent FromAdapter(Gemma4Content c)
        {
            switch (c.Kind)
            {
                case Gemma4ContentKind.Reasoning: return new TextReasoningContent(c.Text);
                case Gemma4ContentKind.FunctionCall: return new FunctionCallContent(c.CallId, c.Name, c.Arguments);
                default: return new TextContent(c.Text);
            }
        }

        static UsageDetails ToUsage(Gemma4Content u)
        {
            return new UsageDetails
            {
                InputTokenCount = u.InputTokens,
                OutputTokenCount = u.OutputTokens,
                TotalTokenCount = u.InputTokens + u.OutputTokens,
                AdditionalCounts = new AdditionalPropertiesDictionary<long> { ["CachedInputTokenCount"] = u.CachedInputTokens },
            };
        }

        static Gemma4AdapterOptions ToAdapter(ChatOptions o)
        {
            if (o == null) return null;
            var a = new Gemma4AdapterOptions
            {
                Temperature = o.Temperature,
                TopP = o.TopP,
                TopK = o.TopK,
                MaxOutputTokens = o.MaxOutputTokens,
                Seed = o.Seed,
                StopSequences = o.StopSequences,
                AdditionalProperties = o.AdditionalProperties?.ToDictionary(kv => kv.Key, kv => kv.Value),
                Tools = o.Tools?.OfType<AIFunction>()
                    .Select(f => new Gemma4Tool(f.Name, f.Description, f.JsonSchema.GetRawText())).ToList(),
            };
            switch (o.ToolMode)
            {
                case NoneChatToolMode _: a.ToolMode = Gemma4ToolMode.None; break;
                case RequiredChatToolMode r when r.RequiredFunctionName != null:
                    a.ToolMode = Gemma4ToolMode.RequireSpecific;
                    a.RequiredFunctionName = r.RequiredFunctionName;
                    break;
                case RequiredChatToolMode _: a.ToolMode = Gemma4ToolMode.RequireAny; break;
                default: a.ToolMode = Gemma4ToolMode.Auto; break;
            }
            return a;
        }
    }

    public static class Gemma4ChatClientExtensions
    {
        // IChatClient over a chat session (the caller keeps owning it).
        public static IChatClient AsChatClient(this Gemma4ChatSession chat, string modelId = null)
        {
            return new Gemma4ChatClient(chat, modelId, ownsChat: false);
        }

        // IChatClient over a model: creates and owns a Gemma4ChatSession (disposed with the client).
        public static IChatClient AsChatClient(this Gemma4Model model, long nCtx = 0, int maxConversations = 4)
        {
            return new Gemma4ChatClient(new Gemma4ChatSession(model, nCtx, maxConversations), null, ownsChat: true);
        }
    }
}
