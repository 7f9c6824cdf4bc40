// Gemma4TokenStream.cs: a generation running on a worker thread whose pieces of text are
// pulled by the caller, synchronously (foreach, MoveNext) or asynchronously (MoveNextAsync).
//
// This is the tested core of every streaming API: the IAsyncEnumerable<string> members
// (Gemma4AsyncStreams.cs) are a thin enumerator over MoveNextAsync.
// Disposing the stream before the end cancels the generation and waits for the worker, so the
// session is free again when Dispose returns. A cancelled token (the one given at creation or
// the one given to MoveNextAsync) makes the next MoveNext throw OperationCanceledException.
using System;
using System.Collections;
using System.Collections.Generic;
using System.Runtime.ExceptionServices;
using System.Threading;
using System.Threading.Tasks;

namespace Gemma4
{
    public sealed class Gemma4TokenStream : IEnumerable<string>, IDisposable
    {
        readonly object gate = new object();
        readonly Queue<string> pieces = new Queue<string>();
        readonly SemaphoreSlim available = new SemaphoreSlim(0); // one count per piece, +1 at the end
        readonly CancellationTokenSource cts;
        readonly Task<Gemma4Result> worker;
        bool finished;
        Exception error;
        int enumerated;

        internal Gemma4TokenStream(Func<Func<string, bool>, CancellationToken, Gemma4Result> run,
                                   CancellationToken cancellationToken)
        {
            cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            CancellationToken token = cts.Token;
            worker = Task.Factory.StartNew(() =>
            {
                try
                {
                    return run(piece =>
                    {
                        lock (gate) pieces.Enqueue(piece);
                        available.Release();
                        return true;
                    }, token);
                }
                catch (Exception e)
                {
                    lock (gate) error = e;
                    throw;
                }
                finally
                {
                    lock (gate) finished = true;
                    available.Release();
                }
            }, CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        }

        // The piece returned by the last successful MoveNext/MoveNextAsync.
        public string Current { get; private set; }

        // Completes with the Gemma4Result (or the error) when the generation ends.
        public Task<Gemma4Result> Completion { get { return worker; } }

        // The result once MoveNext has returned false (null before).
        public Gemma4Result Result
        {
            get { return worker.Status == TaskStatus.RanToCompletion ? worker.Result : null; }
        }

        public void Cancel()
        {
            try { cts.Cancel(); } catch (ObjectDisposedException) { }
        }

        public bool MoveNext()
        {
            available.Wait();
            return TakeNext();
        }

        public async Task<bool> MoveNextAsync(CancellationToken cancellationToken = default(CancellationToken))
        {
            // cancelling the consumer's token stops the generation; the worker then ends with
            // OperationCanceledException, which TakeNext rethrows
            using (cancellationToken.Register(Cancel))
                await available.WaitAsync().ConfigureAwait(false);
            return TakeNext();
        }

        bool TakeNext()
        {
            lock (gate)
            {
                if (pieces.Count > 0)
                {
                    Current = pieces.Dequeue();
                    return true;
                }
                if (!finished) throw new InvalidOperationException("stream signalled without data");
            }
            available.Release(); // keep the end signalled for further calls
            Current = null;
            if (error != null) ExceptionDispatchInfo.Capture(error).Throw();
            return false;
        }

        public IEnumerator<string> GetEnumerator()
        {
            if (Interlocked.Exchange(ref enumerated, 1) != 0)
                throw new InvalidOperationException("a Gemma4TokenStream can be enumerated once");
            return Enumerate();
        }

        // foreach owns the stream: leaving the loop early (break, exception) cancels the rest
        IEnumerator<string> Enumerate()
        {
            try
            {
                while (MoveNext()) yield return Current;
            }
            finally { Dispose(); }
        }

        IEnumerator IEnumerable.GetEnumerator() { return GetEnumerator(); }

        // Cancels a generation still running and waits for it to end.
        public void Dispose()
        {
            if (!worker.IsCompleted) Cancel();
            try { worker.Wait(); }
            catch (AggregateException) { } // already surfaced through MoveNext, or not wanted
            cts.Dispose();
        }
    }
}
