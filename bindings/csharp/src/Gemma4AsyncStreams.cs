// Gemma4AsyncStreams.cs: IAsyncEnumerable<string> streaming, written without async iterators
// (C# 7.2) so that Mono's mcs compiles it and the Mono test suite runs it; modern .NET callers
// use it with `await foreach`. Enumeration starts generation; disposing the enumerator (or
// leaving `await foreach` early) cancels the rest and waits until the session is free.
using System;
using System.Collections.Generic;
using System.Threading;
using System.Threading.Tasks;

namespace Gemma4
{
    // A stream that starts when enumerated: `start` creates the underlying Gemma4TokenStream
    // with the enumerator's cancellation token.
    public sealed class Gemma4AsyncTokenStream : IAsyncEnumerable<string>
    {
        readonly Func<CancellationToken, Gemma4TokenStream> start;

        internal Gemma4AsyncTokenStream(Func<CancellationToken, Gemma4TokenStream> start)
        {
            this.start = start;
        }

        // The token given when the stream was made and the one given to GetAsyncEnumerator
        // (await foreach's WithCancellation) both cancel.
        internal static CancellationToken Link(CancellationToken a, CancellationToken b)
        {
            if (!a.CanBeCanceled) return b;
            if (!b.CanBeCanceled) return a;
            return CancellationTokenSource.CreateLinkedTokenSource(a, b).Token;
        }

        public IAsyncEnumerator<string> GetAsyncEnumerator(CancellationToken cancellationToken = default(CancellationToken))
        {
            return new Enumerator(start(cancellationToken), cancellationToken);
        }

        sealed class Enumerator : IAsyncEnumerator<string>
        {
            readonly Gemma4TokenStream stream;
            readonly CancellationToken token;

            public Enumerator(Gemma4TokenStream stream, CancellationToken token)
            {
                this.stream = stream;
                this.token = token;
            }

            public string Current { get { return stream.Current; } }

            public ValueTask<bool> MoveNextAsync() { return new ValueTask<bool>(stream.MoveNextAsync(token)); }

            public ValueTask DisposeAsync()
            {
                stream.Dispose();
                return default(ValueTask);
            }
        }
    }

    public sealed partial class Gemma4ChatSession
    {
        // Streams the model's reply; cancelling the token stops generation and throws
        // OperationCanceledException from MoveNextAsync; the conversation stays usable.
        public IAsyncEnumerable<string> StreamAsync(string conversationKey, IList<Gemma4Message> messages,
                                                    Gemma4GenerationOptions options = null,
                                                    CancellationToken cancellationToken = default(CancellationToken))
        {
            return new Gemma4AsyncTokenStream(ct =>
                Stream(conversationKey, messages, options, Gemma4AsyncTokenStream.Link(cancellationToken, ct)));
        }
    }

    public static class Gemma4SessionAsyncExtensions
    {
        public static IAsyncEnumerable<string> GenerateStreamAsync(this Gemma4Session session, string prompt, int maxTokens,
                                                                   CancellationToken cancellationToken = default(CancellationToken))
        {
            return new Gemma4AsyncTokenStream(ct =>
                session.GenerateStream(prompt, maxTokens, Gemma4AsyncTokenStream.Link(cancellationToken, ct)));
        }
    }
}
