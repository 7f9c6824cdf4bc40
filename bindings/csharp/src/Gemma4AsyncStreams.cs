// Gemma4AsyncStreams.cs: IAsyncEnumerable<string> streaming for modern .NET (C# 8+,
// netcoreapp3.0+). Mono's mcs (C# 7) cannot compile async iterators, so this file is excluded
// there; it adds nothing but a loop over Gemma4TokenStream.MoveNextAsync, which the Mono test
// suite exercises directly.
#if NETCOREAPP3_0_OR_GREATER || NETSTANDARD2_1_OR_GREATER || GEMMA4_ASYNC_STREAMS
using System.Collections.Generic;
using System.Runtime.CompilerServices;
using System.Threading;

namespace Gemma4
{
    public sealed partial class Gemma4ChatSession
    {
        // Streams the model's reply; cancelling the token stops generation and throws
        // OperationCanceledException from the enumeration; the conversation stays usable.
        public async IAsyncEnumerable<string> StreamAsync(string conversationKey, IList<Gemma4Message> messages,
                                                          Gemma4GenerationOptions options = null,
                                                          [EnumeratorCancellation] CancellationToken cancellationToken = default)
        {
            using (Gemma4TokenStream stream = Stream(conversationKey, messages, options, cancellationToken))
            {
                while (await stream.MoveNextAsync(cancellationToken).ConfigureAwait(false))
                    yield return stream.Current;
            }
        }
    }

    public static class Gemma4SessionAsyncExtensions
    {
        public static async IAsyncEnumerable<string> GenerateStreamAsync(this Gemma4Session session, string prompt, int maxTokens,
                                                                         [EnumeratorCancellation] CancellationToken cancellationToken = default)
        {
            using (Gemma4TokenStream stream = session.GenerateStream(prompt, maxTokens, cancellationToken))
            {
                while (await stream.MoveNextAsync(cancellationToken).ConfigureAwait(false))
                    yield return stream.Current;
            }
        }
    }
}
#endif
