# ExUnit tests of chat completions with tools and thinking and of Gemma4.Serving, on the tiny e2b
# fixture with the model's replies forced (Gemma4.force_tokens/2): events and results, tool
# round trips, Keyword.validate!, child spec under a supervisor, run/2, streaming with tool calls
# as maps, valid UTF-8 output, and the JSON codec.
defmodule Gemma4ChatTest do
  use ExUnit.Case, async: false

  @golden System.get_env("GEMMA4_FIXTURES") || Path.expand("../../../tests/golden", __DIR__)
  @tools [
    %{
      type: "function",
      function: %{
        name: "get_weather",
        description: "Weather",
        parameters: %{type: "object", properties: %{city: %{type: "string"}}, required: ["city"]}
      }
    }
  ]
  @user [%{role: "user", content: "Weather in Paris?"}]

  setup_all do
    {:ok, model} = Gemma4.load(Path.join(@golden, "e2b"), n_ctx: 512, n_threads: 1)
    %{model: model}
  end

  # gemma4_tokenize takes only valid UTF-8, so bytes that are not become their byte-fallback
  # tokens (the token whose piece is that single byte >= 0x80).
  defp force(model, session, text) do
    ids =
      text
      |> String.chunk(:valid)
      |> Enum.flat_map(fn chunk ->
        if String.valid?(chunk) do
          {:ok, ids} = Gemma4.tokenize(model, chunk)
          ids
        else
          for <<b <- chunk>>, do: byte_token(model, b)
        end
      end)

    :ok = Gemma4.force_tokens(session, ids)
  end

  defp byte_token(model, b) do
    {:ok, %{vocab_size: v}} = Gemma4.model_info(model)
    Enum.find(0..(v - 1), fn id -> Gemma4.token_piece(model, id) == {:ok, <<b>>} end)
  end

  test "JSON codec round trip" do
    v = %{"a" => [1, 2.5, "x\n\"é", nil, true], "b" => %{"c" => -3}}
    assert Gemma4.JSON.decode!(Gemma4.JSON.encode!(v)) == v
    assert Gemma4.JSON.decode!(~s({"u":"\\u00fc\\ud83c\\udf0d","e":1e3})) == %{"u" => "ü🌍", "e" => 1000.0}
    assert_raise ArgumentError, fn -> Gemma4.JSON.decode!("[1,") end
    assert_raise ArgumentError, fn -> Gemma4.JSON.encode!(<<0xFF>>) end
  end

  test "tool call, thinking and the tool result round trip", %{model: model} do
    {:ok, s} = Gemma4.session(model)
    force(model, s, "<|channel>thought\nNeed it.<channel|><|tool_call>call:get_weather{city:<|\"|>Paris<|\"|>}<tool_call|><|tool_response>")
    {:ok, ref} = Gemma4.chat_completion(s, @user, tools: @tools, enable_thinking: true)
    {:ok, r} = Gemma4.await_chat(ref)
    assert r.finish_reason == :tool_calls
    assert r.reasoning == "Need it."
    assert r.content == ""
    assert [%{id: "call_0", name: "get_weather", arguments: %{"city" => "Paris"}}] = r.tool_calls
    assert r.usage.cached_tokens == 0 and r.usage.completion_tokens > 0

    history =
      @user ++
        [
          %{role: "assistant", content: nil, reasoning_content: r.reasoning,
            tool_calls: [%{id: "call_0", type: "function", function: %{name: "get_weather", arguments: %{city: "Paris"}}}]},
          %{role: "tool", tool_call_id: "call_0", content: %{temp: 21}}
        ]

    # thinking on: the prompt after tool results opens the thought channel itself
    force(model, s, "21 is warm.<channel|>Warm.<turn|>")
    {:ok, ref} = Gemma4.chat_completion(s, history, tools: @tools, enable_thinking: true)
    {:ok, r2} = Gemma4.await_chat(ref)
    assert r2.content == "Warm." and r2.reasoning == "21 is warm." and r2.finish_reason == :stop
    assert r2.usage.cached_tokens > r.usage.prompt_tokens
    {:ok, text} = Gemma4.render_chat(model, history, tools: @tools, enable_thinking: true)
    assert text =~ "<|tool_response>response:get_weather{temp:21}<tool_response|>"
  end

  test "options are validated", %{model: model} do
    {:ok, s} = Gemma4.session(model)
    assert_raise ArgumentError, ~r/unknown keys \[:temprature\]/, fn ->
      Gemma4.chat_completion(s, @user, temprature: 0.5)
    end
    assert_raise ArgumentError, fn -> Gemma4.Serving.new(model, bogus: 1) end
    serving = Gemma4.Serving.new(model)
    assert_raise ArgumentError, fn -> Gemma4.Serving.run(serving, %{messages: @user, nope: 1}) end
    # the library checks the conversation on the worker: the error is the completion's result
    {:ok, ref} = Gemma4.chat_completion(s, [%{role: "robot", content: "x"}])
    assert {:error, {:invalid_argument, msg}} = Gemma4.await_chat(ref)
    assert msg =~ "unknown role"
  end

  test "Serving.run/2 inline, and streaming with tool calls as maps", %{model: model} do
    serving = Gemma4.Serving.new(model, tools: @tools, stream: true)
    # run/2 makes its own session: force through a wrapper around the NIF's session creation
    # is not possible, so the streaming run is driven on the serving process below; here the
    # inline run generates from the tiny model and must come back well-formed.
    events = Gemma4.Serving.run(%{serving | opts: Keyword.put(serving.opts, :max_tokens, 5)}, @user) |> Enum.to_list()
    assert {:done, %{finish_reason: reason, usage: %{completion_tokens: n}}} = List.last(events)
    assert reason in [:stop, :length, :tool_calls] and n <= 5
    for {kind, t} <- events, kind in [:text, :reasoning], do: assert(String.valid?(t))
  end

  test "supervised serving: batched_run, streaming, queueing, valid UTF-8", %{model: model} do
    serving = Gemma4.Serving.new(model, tools: @tools, max_tokens: 64)
    {:ok, sup} = Supervisor.start_link([{Gemma4.Serving, serving: serving, name: Gemma4ChatTest.Serving}], strategy: :one_for_one)
    session = :sys.get_state(Gemma4ChatTest.Serving).session

    force(model, session, "Hi there.<turn|>")
    r = Gemma4.Serving.batched_run(Gemma4ChatTest.Serving, @user)
    assert r.content == "Hi there." and r.finish_reason == :stop

    # streaming with thinking and two calls; stray bytes arrive as U+FFFD, never invalid UTF-8
    force(model, session, "<|channel>thought\nhm\xE2\x82<channel|>Gr\xC3\xBC\xC3\x9Fe \xF0\x9F\x8C\x8D \xD0!<|tool_call>call:get_weather{city:<|\"|>K\xC3\xB6ln<|\"|>}<tool_call|><|tool_call>call:get_weather{city:<|\"|>Rom<|\"|>}<tool_call|><|tool_response>")
    events = Gemma4.Serving.batched_run(Gemma4ChatTest.Serving, %{messages: @user, stream: true, enable_thinking: true, max_tokens: 400}) |> Enum.to_list()
    text = for {:text, t} <- events, into: "", do: t
    reasoning = for {:reasoning, t} <- events, into: "", do: t
    assert text == "Grüße 🌍 \uFFFD!"
    assert reasoning == "hm\uFFFD\uFFFD"
    assert Enum.all?(for({k, t} <- events, k in [:text, :reasoning], do: String.valid?(t)))
    assert [%{name: "get_weather", arguments: %{"city" => "Köln"}}, %{arguments: %{"city" => "Rom"}}] =
             for({:tool_call, c} <- events, do: c)
    assert {:done, %{finish_reason: :tool_calls}} = List.last(events)

    # two callers at once: the second waits for the first (one session, queued), both finish
    force(model, session, "one two three<turn|>")
    t1 = Task.async(fn -> Gemma4.Serving.batched_run(Gemma4ChatTest.Serving, %{messages: @user, max_tokens: 3}) end)
    t2 = Task.async(fn -> Gemma4.Serving.batched_run(Gemma4ChatTest.Serving, %{messages: @user, max_tokens: 2}) end)
    results = [Task.await(t1, 30_000), Task.await(t2, 30_000)]
    assert Enum.all?(results, &(&1.finish_reason in [:stop, :length]))

    # halting a stream early cancels it; the serving keeps working
    force(model, session, "a b c d e f g h i j k l m n o p<turn|>")
    assert [_] = Gemma4.Serving.batched_run(Gemma4ChatTest.Serving, %{messages: @user, stream: true}) |> Enum.take(1)
    refute_received {:gemma4_event, _, _} # the rest was drained
    force(model, session, "again<turn|>")
    assert Gemma4.Serving.batched_run(Gemma4ChatTest.Serving, @user).content == "again"
    Supervisor.stop(sup)
  end
end
