// Chat.cs: a streaming chat loop over Gemma4ChatSession. Ctrl+C stops the current reply (the
// conversation continues); an empty line or end of input quits.
// Build and run (Mono), after bash scripts/build.sh, from the repository root:
//   bash samples/csharp/run.sh path/to/gemma-4-E2B-it [SYSTEM_PROMPT]
// which does: mcs -unsafe -out:build/csharp/Chat.exe samples/csharp/Chat.cs bindings/csharp/src/*.cs
// with build/libgemma4.so* copied next to Chat.exe (the runtime looks there first; otherwise set
// LD_LIBRARY_PATH=build). Replies are at most 256 tokens (Gemma4GenerationOptions.MaxTokens's
// default, the same in every gemma4 front end).
using System;
using System.Collections.Generic;
using System.Threading;
using Gemma4;

static class Chat
{
    static int Main(string[] args)
    {
        if (args.Length < 1)
        {
            Console.Error.WriteLine("usage: Chat.exe MODEL_DIR [SYSTEM_PROMPT]");
            return 2;
        }
        try
        {
            using (Gemma4Model model = Gemma4Model.Load(args[0], 4096))
            using (var chat = new Gemma4ChatSession(model))
            {
                var history = new List<Gemma4Message>();
                if (args.Length > 1) history.Add(Gemma4Message.System(args[1]));
                var options = new Gemma4GenerationOptions { Temperature = 0.7f, TopP = 0.95f, TopK = 64 };
                CancellationTokenSource reply = null;
                Console.CancelKeyPress += (s, e) =>
                {
                    CancellationTokenSource r = reply;
                    if (r != null) { e.Cancel = true; r.Cancel(); }
                };
                while (true)
                {
                    Console.Write("> ");
                    string line = Console.ReadLine();
                    if (string.IsNullOrEmpty(line)) return 0;
                    history.Add(Gemma4Message.User(line));
                    var text = new System.Text.StringBuilder();
                    reply = new CancellationTokenSource();
                    try
                    {
                        // the whole history goes in each turn; only the new turn is run
                        foreach (string piece in chat.Stream(null, history, options, reply.Token))
                        {
                            Console.Write(piece);
                            text.Append(piece);
                        }
                    }
                    catch (OperationCanceledException) { Console.Write(" [stopped]"); }
                    finally { reply = null; }
                    Console.WriteLine();
                    history.Add(Gemma4Message.Model(text.ToString()));
                }
            }
        }
        catch (Gemma4Exception e)
        {
            Console.Error.WriteLine("error {0} ({1}): {2}", e.Status, e.Code, e.NativeMessage);
            return 1;
        }
    }
}
