# A terminal chat that streams the model's replies and reuses the session's cache each turn.
#   cd bindings/elixir && mix run --no-deps-check ../../samples/elixir/chat.exs path/to/gemma-4-E2B-it
# (the tiny test fixture ../../tests/golden/e2b works too, but its random weights babble)
[dir | _] = System.argv() ++ [Path.expand("../../tests/golden/e2b", __DIR__)]

{:ok, model} =
  case Gemma4.load(dir, n_ctx: 4096) do
    {:ok, _} = ok -> ok
    {:error, {code, msg}} -> raise "load failed (#{code}): #{msg}"
  end

{:ok, session} = Gemma4.session(model, temperature: 0.7, top_p: 0.95, seed: 1)

Enum.reduce_while(Stream.repeatedly(fn -> IO.gets("> ") end), [], fn line, history ->
  case line do
    :eof ->
      {:halt, history}

    line ->
      history = history ++ [{"user", String.trim(line)}]
      {:ok, ref} = Gemma4.chat(session, history)

      reply =
        Stream.repeatedly(fn ->
          receive do
            {:gemma4_token, ^ref, text} -> IO.write(text) && text
            {:gemma4_done, ^ref, stats} -> {:done, stats}
            {:gemma4_error, ^ref, {code, msg}} -> {:done, %{error: code, message: msg}}
          end
        end)
        |> Enum.reduce_while([], fn
          {:done, stats}, acc -> IO.puts("\n  #{inspect(stats)}") && {:halt, acc}
          text, acc -> {:cont, [acc | text]}
        end)

      {:cont, history ++ [{"model", IO.iodata_to_binary(reply)}]}
  end
end)
