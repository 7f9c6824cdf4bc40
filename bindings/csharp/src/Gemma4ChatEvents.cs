// Gemma4ChatEvents.cs: chat completions with tools and thinking on Gemma4ChatSession's
// conversations (cache reuse per conversation key, as Complete), blocking with a callback
// (CompleteChat) or pulled on a worker thread (StreamChat -> Gemma4ChatEventStream, the same
// machinery as Gemma4TokenStream with events instead of text pieces).
using System;
using System.Collections;
using System.Collections.Generic;
using System.Runtime.ExceptionServices;
using System.Threading;
using System.Threading.Tasks;

namespace Gemma4
{
    public sealed partial class Gemma4ChatSession
    {
        public Gemma4ChatResult CompleteChat(string conversationKey, IList<Gemma4ChatMessage> messages,
                                             IList<Gemma4Tool> tools = null, Gemma4GenerationOptions options = null,
                                             bool enableThinking = false, Func<Gemma4ChatEvent, bool> onEvent = null,
                                             CancellationToken cancellationToken = default(CancellationToken))
        {
            if (messages == null) throw new ArgumentNullException("messages");
            Gemma4GenerationOptions o = (options ?? new Gemma4GenerationOptions()).Clone();
            Conversation c = Acquire(conversationKey);
            try
            {
                c.Gate.Wait(cancellationToken);
                try
                {
                    if (c.Session == null) c.Session = model.CreateSession(nCtx, precision);
                    return c.Session.ChatComplete(messages, tools, o, enableThinking, onEvent, cancellationToken);
                }
                finally { c.Gate.Release(); }
            }
            finally { Release(c); }
        }

        public Gemma4ChatEventStream StreamChat(string conversationKey, IList<Gemma4ChatMessage> messages,
                                                IList<Gemma4Tool> tools = null, Gemma4GenerationOptions options = null,
                                                bool enableThinking = false,
                                                CancellationToken cancellationToken = default(CancellationToken))
        {
            if (messages == null) throw new ArgumentNullException("messages");
            var snapshot = new List<Gemma4ChatMessage>(messages);
            var toolList = tools == null ? null : new List<Gemma4Tool>(tools);
            Gemma4GenerationOptions o = (options ?? new Gemma4GenerationOptions()).Clone();
            return new Gemma4ChatEventStream((onEvent, ct) =>
                CompleteChat(conversationKey, snapshot, toolList, o, enableThinking, onEvent, ct), cancellationToken);
        }
    }

    public sealed class Gemma4ChatEventStream : IEnumerable<Gemma4ChatEvent>, IDisposable
    {
        readonly object gate = new object();
        readonly Queue<Gemma4ChatEvent> events = new Queue<Gemma4ChatEvent>();
        readonly SemaphoreSlim available = new SemaphoreSlim(0);
        readonly CancellationTokenSource cts;
        readonly Task<Gemma4ChatResult> worker;
        bool finished;
        Exception error;
        int enumerated;

        internal Gemma4ChatEventStream(Func<Func<Gemma4ChatEvent, bool>, CancellationToken, Gemma4ChatResult> run,
                                       CancellationToken cancellationToken)
        {
            cts = CancellationTokenSource.CreateLinkedTokenSource(cancellationToken);
            CancellationToken token = cts.Token;
            worker = Task.Factory.StartNew(() =>
            {
                try
                {
                    return run(ev =>
                    {
                        lock (gate) events.Enqueue(ev);
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

        public Gemma4ChatEvent Current { get; private set; }
        public Task<Gemma4ChatResult> Completion { get { return worker; } }
        // The result once MoveNext has returned false (null before).
        public Gemma4ChatResult Result
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
            using (cancellationToken.Register(Cancel))
                await available.WaitAsync().ConfigureAwait(false);
            return TakeNext();
        }

        bool TakeNext()
        {
            lock (gate)
            {
                if (events.Count > 0)
                {
                    Current = events.Dequeue();
                    return true;
                }
                if (!finished) throw new InvalidOperationException("stream signalled without data");
            }
            available.Release();
            Current = null;
            if (error != null) ExceptionDispatchInfo.Capture(error).Throw();
            return false;
        }

        public IEnumerator<Gemma4ChatEvent> GetEnumerator()
        {
            if (Interlocked.Exchange(ref enumerated, 1) != 0)
                throw new InvalidOperationException("a Gemma4ChatEventStream can be enumerated once");
            return Enumerate();
        }

        IEnumerator<Gemma4ChatEvent> Enumerate()
        {
            try
            {
                while (MoveNext()) yield return Current;
            }
            finally { Dispose(); }
        }

        IEnumerator IEnumerable.GetEnumerator() { return GetEnumerator(); }

        public void Dispose()
        {
            if (!worker.IsCompleted) Cancel();
            try { worker.Wait(); }
            catch (AggregateException) { }
            cts.Dispose();
        }
    }
}
