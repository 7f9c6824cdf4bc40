// Gemma4ChatClient.cs: Microsoft.Extensions.AI IChatClient over Gemma4ChatSession.
//
// Deliberately thin: role mapping (Gemma4Roles.Normalize), conversation cache reuse, sampler
// settings, streaming and cancellation all live in the Mono-tested core (bindings/csharp/src).
// This file only translates types. It needs the Microsoft.Extensions.AI.Abstractions package
// (9.x) and modern .NET, so it is not built or run by run_tests.sh (no NuGet there).
//
// Conversation key: ChatOptions.ConversationId when set, else a single default conversation.
// Because gemma4_chat_generate keeps the longest common prefix, a caller that resends the whole
// history each turn (the IChatClient convention) only pays for the new turns either way.
using System;
using System.Collections.Generic;
using System.Linq;
using System.Runtime.CompilerServices;
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
            Gemma4Result r = await chat.CompleteAsync(options?.ConversationId, ToGemma(messages), ToGemma(options),
                                                      null, cancellationToken).ConfigureAwait(false);
            return new ChatResponse(new ChatMessage(ChatRole.Assistant, r.Text))
            {
                ModelId = metadata.DefaultModelId,
                ConversationId = options?.ConversationId,
                FinishReason = ToFinishReason(r),
                Usage = new UsageDetails
                {
                    InputTokenCount = r.PromptTokens,
                    OutputTokenCount = r.GeneratedTokens,
                    TotalTokenCount = r.PromptTokens + r.GeneratedTokens,
                },
            };
        }

        public async IAsyncEnumerable<ChatResponseUpdate> GetStreamingResponseAsync(
            IEnumerable<ChatMessage> messages, ChatOptions options = null,
            [EnumeratorCancellation] CancellationToken cancellationToken = default)
        {
            string responseId = Guid.NewGuid().ToString("N");
            using (Gemma4TokenStream stream = chat.Stream(options?.ConversationId, ToGemma(messages), ToGemma(options),
                                                          cancellationToken))
            {
                while (await stream.MoveNextAsync(cancellationToken).ConfigureAwait(false))
                    yield return new ChatResponseUpdate(ChatRole.Assistant, stream.Current)
                    {
                        ResponseId = responseId,
                        ModelId = metadata.DefaultModelId,
                        ConversationId = options?.ConversationId,
                    };
                Gemma4Result r = stream.Result;
                yield return new ChatResponseUpdate
                {
                    Role = ChatRole.Assistant,
                    ResponseId = responseId,
                    ModelId = metadata.DefaultModelId,
                    ConversationId = options?.ConversationId,
                    FinishReason = ToFinishReason(r),
                    Contents = { new UsageContent(new UsageDetails
                    {
                        InputTokenCount = r.PromptTokens,
                        OutputTokenCount = r.GeneratedTokens,
                        TotalTokenCount = r.PromptTokens + r.GeneratedTokens,
                    }) },
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

        // ChatRole -> Gemma 4 turn ("assistant" -> "model"; tool turns are refused by the core).
        static List<Gemma4Message> ToGemma(IEnumerable<ChatMessage> messages)
        {
            if (messages == null) throw new ArgumentNullException(nameof(messages));
            return messages.Select(m => new Gemma4Message(Gemma4Roles.Normalize(m.Role.Value), m.Text)).ToList();
        }

        // ChatOptions -> sampler settings. Temperature null/0 is greedy. FrequencyPenalty and
        // PresencePenalty (additive, OpenAI-style) have no equivalent; a Hugging Face
        // multiplicative penalty can be passed as AdditionalProperties["repetition_penalty"]
        // (and "repetition_last_n", "min_p").
        static Gemma4GenerationOptions ToGemma(ChatOptions o)
        {
            var g = new Gemma4GenerationOptions();
            if (o == null) return g;
            if (o.MaxOutputTokens.HasValue) g.MaxTokens = o.MaxOutputTokens.Value;
            g.Temperature = o.Temperature;
            g.TopK = o.TopK;
            g.TopP = o.TopP;
            if (o.Seed.HasValue) g.Seed = unchecked((ulong)o.Seed.Value);
            if (o.StopSequences != null) g.Stop = o.StopSequences.ToList();
            if (o.AdditionalProperties != null)
            {
                if (o.AdditionalProperties.TryGetValue("repetition_penalty", out float penalty)) g.RepetitionPenalty = penalty;
                if (o.AdditionalProperties.TryGetValue("repetition_last_n", out int lastN)) g.RepetitionLastN = lastN;
                if (o.AdditionalProperties.TryGetValue("min_p", out float minP)) g.MinP = minP;
            }
            return g;
        }

        static ChatFinishReason ToFinishReason(Gemma4Result r)
        {
            return r.FinishReason == Gemma4FinishReason.Length ? ChatFinishReason.Length : ChatFinishReason.Stop;
        }
    }
}
