// Gemma4ChatSession.cs: multi-turn chat over a Gemma4Model with KV-cache reuse per
// conversation.
//
// Each conversation key owns one native session. Every call passes the whole message list;
// gemma4_chat_generate keeps the longest prefix already in that session's cache and runs only
// the rest, so turn N costs only the new turn's tokens. Sessions live in a small LRU map:
// past MaxConversations the least recently used idle conversation is freed (an in-use one is
// never evicted; the map may then exceed its size until that call ends). Calls on the same key
// are serialised; calls on different keys may run in parallel on different threads.
using System;
using System.Collections.Generic;
using System.Threading;
using System.Threading.Tasks;

namespace Gemma4
{
    public sealed partial class Gemma4ChatSession : IDisposable
    {
        // Key used when the caller passes null.
        public const string DefaultConversation = "";

        sealed class Conversation
        {
            internal string Key;
            internal Gemma4Session Session;
            internal readonly SemaphoreSlim Gate = new SemaphoreSlim(1, 1);
            internal int Users; // guarded by the map lock
            internal LinkedListNode<Conversation> Node;
        }

        readonly Gemma4Model model;
        readonly long nCtx;
        readonly Gemma4Precision precision;
        readonly object mapLock = new object();
        readonly Dictionary<string, Conversation> map = new Dictionary<string, Conversation>();
        readonly LinkedList<Conversation> lru = new LinkedList<Conversation>(); // most recent first
        bool disposed;

        // model stays owned by the caller (sessions keep the weights alive natively anyway).
        // nCtx: context of each conversation's session (<= 0: the model's default).
        public Gemma4ChatSession(Gemma4Model model, long nCtx = 0, int maxConversations = 4)
            : this(model, nCtx, maxConversations, Gemma4Precision.Fp32)
        {
        }

        // precision: set on each conversation's session when it is created (a value outside the
        // enum makes those calls throw Gemma4Exception InvalidArgument).
        public Gemma4ChatSession(Gemma4Model model, long nCtx, int maxConversations, Gemma4Precision precision)
        {
            if (model == null) throw new ArgumentNullException("model");
            if (maxConversations < 1) throw new ArgumentOutOfRangeException("maxConversations");
            this.model = model;
            this.nCtx = nCtx;
            this.precision = precision;
            MaxConversations = maxConversations;
            DefaultOptions = new Gemma4GenerationOptions();
        }

        public int MaxConversations { get; private set; }
        public Gemma4GenerationOptions DefaultOptions { get; set; }
        public Gemma4Model Model { get { return model; } }
        public Gemma4Precision Precision { get { return precision; } }

        public int Count { get { lock (mapLock) return map.Count; } }
        public bool Contains(string conversationKey)
        {
            lock (mapLock) return map.ContainsKey(conversationKey ?? DefaultConversation);
        }

        // Generates the model's reply to messages (the full conversation so far) in the
        // conversation's session. onPiece gets each piece of text and returns false to stop.
        public Gemma4Result Complete(string conversationKey, IList<Gemma4Message> messages,
                                     Gemma4GenerationOptions options = null, Func<string, bool> onPiece = null,
                                     CancellationToken cancellationToken = default(CancellationToken))
        {
            if (messages == null) throw new ArgumentNullException("messages");
            Gemma4GenerationOptions o = (options ?? DefaultOptions).Clone();
            Conversation c = Acquire(conversationKey);
            try
            {
                c.Gate.Wait(cancellationToken);
                try
                {
                    if (c.Session == null) c.Session = model.CreateSession(nCtx, precision);
                    c.Session.Configure(o);
                    return c.Session.ChatGenerate(messages, o.MaxTokens, onPiece, cancellationToken);
                }
                finally { c.Gate.Release(); }
            }
            finally { Release(c); }
        }

        // Complete on a worker thread; onPiece (may be null) runs on that thread.
        public Task<Gemma4Result> CompleteAsync(string conversationKey, IList<Gemma4Message> messages,
                                                Gemma4GenerationOptions options = null, Action<string> onPiece = null,
                                                CancellationToken cancellationToken = default(CancellationToken))
        {
            Func<string, bool> f = null;
            if (onPiece != null) f = s => { onPiece(s); return true; };
            List<Gemma4Message> snapshot = Snapshot(messages);
            return Task.Factory.StartNew(() => Complete(conversationKey, snapshot, options, f, cancellationToken),
                                         CancellationToken.None, TaskCreationOptions.LongRunning, TaskScheduler.Default);
        }

        // Complete on a worker thread, pieces pulled with foreach / MoveNextAsync.
        public Gemma4TokenStream Stream(string conversationKey, IList<Gemma4Message> messages,
                                        Gemma4GenerationOptions options = null,
                                        CancellationToken cancellationToken = default(CancellationToken))
        {
            List<Gemma4Message> snapshot = Snapshot(messages);
            Gemma4GenerationOptions o = (options ?? DefaultOptions).Clone();
            return new Gemma4TokenStream((onPiece, ct) => Complete(conversationKey, snapshot, o, onPiece, ct),
                                         cancellationToken);
        }

        // Property of a conversation's session (for example NEvaluated, to see cache reuse).
        public long GetSessionInfo(string conversationKey, Gemma4SessionInfo key)
        {
            Conversation c;
            lock (mapLock)
            {
                if (!map.TryGetValue(conversationKey ?? DefaultConversation, out c) || c.Session == null)
                    throw new KeyNotFoundException("no conversation '" + conversationKey + "'");
                c.Users++;
            }
            try
            {
                c.Gate.Wait();
                try { return c.Session.GetInfo(key); }
                finally { c.Gate.Release(); }
            }
            finally { Release(c); }
        }

        // Frees a conversation's session now (when idle; otherwise once its call ends).
        public bool Forget(string conversationKey)
        {
            lock (mapLock)
            {
                Conversation c;
                if (!map.TryGetValue(conversationKey ?? DefaultConversation, out c)) return false;
                Remove(c);
                if (c.Users == 0 && c.Session != null) c.Session.Dispose();
                return true;
            }
        }

        public void Dispose()
        {
            lock (mapLock)
            {
                disposed = true;
                foreach (Conversation c in new List<Conversation>(map.Values))
                {
                    Remove(c);
                    if (c.Users == 0 && c.Session != null) c.Session.Dispose();
                }
            }
        }

        static List<Gemma4Message> Snapshot(IList<Gemma4Message> messages)
        {
            if (messages == null) throw new ArgumentNullException("messages");
            return new List<Gemma4Message>(messages);
        }

        Conversation Acquire(string key)
        {
            key = key ?? DefaultConversation;
            lock (mapLock)
            {
                if (disposed) throw new ObjectDisposedException("Gemma4ChatSession");
                Conversation c;
                if (map.TryGetValue(key, out c))
                    lru.Remove(c.Node);
                else
                {
                    c = new Conversation { Key = key };
                    map.Add(key, c);
                }
                c.Node = lru.AddFirst(c);
                c.Users++;
                EvictIdle();
                return c;
            }
        }

        void Release(Conversation c)
        {
            lock (mapLock)
            {
                c.Users--;
                bool detached = !map.ContainsKey(c.Key) || !ReferenceEquals(map[c.Key], c);
                if (detached && c.Users == 0 && c.Session != null) c.Session.Dispose();
                EvictIdle();
            }
        }

        // Under mapLock: drop least recently used idle conversations beyond MaxConversations.
        void EvictIdle()
        {
            LinkedListNode<Conversation> node = lru.Last;
            while (map.Count > MaxConversations && node != null)
            {
                LinkedListNode<Conversation> prev = node.Previous;
                Conversation c = node.Value;
                if (c.Users == 0)
                {
                    Remove(c);
                    if (c.Session != null) c.Session.Dispose();
                }
                node = prev;
            }
        }

        void Remove(Conversation c)
        {
            map.Remove(c.Key);
            if (c.Node != null && c.Node.List != null) lru.Remove(c.Node);
        }
    }
}
