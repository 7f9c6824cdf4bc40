defmodule Gemma4.Serving do
  @moduledoc """
  Chat completions served the way `Nx.Serving` serves models (without depending on Nx): build a
  serving with `new/2`, run it inline with `run/2`, or start it under a supervisor and call it
  by name with `batched_run/2`.

      serving = Gemma4.Serving.new(model, max_tokens: 256, tools: tools)
      children = [{Gemma4.Serving, serving: serving, name: MyApp.Gemma}]
      Supervisor.start_link(children, strategy: :one_for_one)

      %{content: text, tool_calls: calls, finish_reason: reason} =
        Gemma4.Serving.batched_run(MyApp.Gemma, [%{role: "user", content: "Hi"}])

  Input: a list of OpenAI-style messages (see `Gemma4.chat_completion/3`), or a map
  `%{messages: [...]}` with per-request options (`tools:`, `max_tokens:`, `temperature:`, ...).
  Output: the result map of `Gemma4.await_chat/2` (`content`, `reasoning`, `tool_calls` as maps
  `%{id:, name:, arguments:}`, `finish_reason`, `usage`). Failures raise `Gemma4.Error`.

  With `stream: true` the result is a lazy `Stream` of `{:text, binary}`,
  `{:reasoning, binary}`, `{:tool_call, %{id:, name:, arguments:}}` and finally
  `{:done, result}`; halting it early cancels the generation. Texts are always valid UTF-8.

  The serving process owns one session and runs one request at a time (others queue), so a
  conversation that is resent with one more turn reuses the cached prefix. Options are
  validated with `Keyword.validate!/2`: an unknown option raises `ArgumentError`.
  """
  use GenServer

  defstruct [:model, :opts]

  @opts [
    n_ctx: 0,
    stream: false,
    tools: nil,
    max_tokens: 256,
    enable_thinking: false,
    preserve_thinking: false,
    temperature: nil,
    top_k: nil,
    top_p: nil,
    min_p: nil,
    seed: nil,
    stop: [],
    repetition_penalty: nil
  ]
  @request_keys Keyword.keys(@opts) -- [:n_ctx]

  @doc "A serving over a loaded model (or a path, loaded with `Gemma4.load/2` defaults)."
  def new(model, opts \\ []) do
    opts = Keyword.validate!(opts, @opts)

    model =
      if is_binary(model) do
        case Gemma4.load(model) do
          {:ok, m} -> m
          {:error, reason} -> raise Gemma4.Error, reason
        end
      else
        model
      end

    %__MODULE__{model: model, opts: opts}
  end

  @doc "Runs `input` on a fresh session in the calling process."
  def run(%__MODULE__{} = serving, input) do
    {:ok, session} = ok!(Gemma4.session(serving.model, n_ctx: serving.opts[:n_ctx]))
    {messages, opts} = request(serving, input)
    if opts[:stream], do: stream(session, messages, opts), else: complete(session, messages, opts)
  end

  @doc "Runs `input` on the serving process `name` (started with `child_spec/1`)."
  def batched_run(name, input) do
    case GenServer.call(name, {:start, input, self()}, :infinity) do
      {:stream, ref} -> receive_stream(name, ref)
      {:ok, ref} -> collect(ref)
      {:error, reason} -> raise Gemma4.Error, reason
    end
  end

  def child_spec(opts) do
    opts = Keyword.validate!(opts, [:serving, :name])
    unless match?(%__MODULE__{}, opts[:serving]), do: raise(ArgumentError, "child_spec needs serving: Gemma4.Serving.new(...)")
    %{id: opts[:name] || __MODULE__, start: {__MODULE__, :start_link, [opts]}}
  end

  def start_link(opts) do
    opts = Keyword.validate!(opts, [:serving, :name])
    GenServer.start_link(__MODULE__, opts[:serving], if(opts[:name], do: [name: opts[:name]], else: []))
  end

  # ---- inline ----

  defp complete(session, messages, opts) do
    {:ok, ref} = ok!(Gemma4.chat_completion(session, messages, chat_opts(opts)))
    case Gemma4.await_chat(ref) do
      {:ok, result} -> result
      {:error, reason} -> raise Gemma4.Error, reason
    end
  end

  defp stream(session, messages, opts) do
    Stream.resource(
      fn -> elem(ok!(Gemma4.chat_completion(session, messages, chat_opts(opts))), 1) end,
      fn
        :done -> {:halt, :done}
        ref -> next_event(ref)
      end,
      fn
        :done ->
          :ok

        ref ->
          Gemma4.cancel(session)
          drain(ref)
      end
    )
  end

  defp next_event(ref) do
    receive do
      {:gemma4_event, ^ref, event} -> {[event(event)], ref}
      {:gemma4_chat_done, ^ref, json} -> {[{:done, Gemma4.decode_result(json)}], :done}
      {:gemma4_error, ^ref, reason} -> raise Gemma4.Error, reason
    end
  end

  defp event({:tool_call, json}), do: {:tool_call, Gemma4.decode_call(json)}
  defp event(e), do: e

  defp collect(ref) do
    receive do
      {:gemma4_event, ^ref, _} -> collect(ref)
      {:gemma4_chat_done, ^ref, json} -> Gemma4.decode_result(json)
      {:gemma4_error, ^ref, reason} -> raise Gemma4.Error, reason
    end
  end

  defp receive_stream(name, ref) do
    Stream.resource(
      fn -> ref end,
      fn
        :done -> {:halt, :done}
        ref -> next_event(ref)
      end,
      fn
        :done ->
          :ok

        ref ->
          # halted early: cancel, then drop the rest of its messages, up to the final one
          GenServer.cast(name, {:cancel, ref})
          drain(ref)
      end
    )
  end

  defp drain(ref) do
    receive do
      {:gemma4_event, ^ref, _} -> drain(ref)
      {:gemma4_chat_done, ^ref, _} -> :ok
      {:gemma4_error, ^ref, _} -> :ok
    end
  end

  defp request(serving, input) do
    {messages, req} =
      case input do
        %{messages: m} = map -> {m, map |> Map.delete(:messages) |> Map.to_list()}
        list when is_list(list) -> {list, []}
        other -> raise ArgumentError, "input must be a message list or %{messages: ...}, got: #{inspect(other)}"
      end

    req = Keyword.validate!(req, @request_keys)
    {messages, Keyword.merge(Keyword.take(serving.opts, @request_keys), req)}
  end

  defp chat_opts(opts), do: Keyword.delete(opts, :stream)

  defp ok!({:ok, _} = ok), do: ok
  defp ok!(:ok), do: :ok
  defp ok!({:error, reason}), do: raise(Gemma4.Error, reason)

  # ---- the serving process: one session, one request at a time, others queued ----

  @impl true
  def init(serving) do
    case Gemma4.session(serving.model, n_ctx: serving.opts[:n_ctx]) do
      {:ok, session} -> {:ok, %{serving: serving, session: session, current: nil, queue: :queue.new()}}
      {:error, reason} -> {:stop, reason}
    end
  end

  @impl true
  def handle_call({:start, input, caller}, from, state) do
    {messages, opts} =
      try do
        request(state.serving, input)
      rescue
        e in ArgumentError -> {:error, e}
      end

    if messages == :error do
      {:reply, {:error, {:invalid_argument, Exception.message(opts)}}, state}
    else
      state = %{state | queue: :queue.in({from, caller, messages, opts}, state.queue)}
      {:noreply, next(state)}
    end
  end

  @impl true
  def handle_cast({:cancel, ref}, state) do
    if state.current && elem(state.current, 0) == ref, do: Gemma4.cancel(state.session)
    {:noreply, state}
  end

  @impl true
  def handle_info({tag, ref, _} = msg, %{current: {ref, caller}} = state)
      when tag in [:gemma4_event, :gemma4_chat_done, :gemma4_error] do
    send(caller, msg)
    if tag == :gemma4_event, do: {:noreply, state}, else: {:noreply, next(%{state | current: nil})}
  end

  def handle_info(_msg, state), do: {:noreply, state}

  # Starts the next queued request when idle. Events go to this process, which forwards them
  # to the caller and starts the next request once the current one has ended.
  defp next(%{current: nil} = state) do
    case :queue.out(state.queue) do
      {:empty, _} ->
        state

      {{:value, {from, caller, messages, opts}}, rest} ->
        state = %{state | queue: rest}

        case Gemma4.chat_completion(state.session, messages, chat_opts(opts) |> Keyword.put(:to, self())) do
          {:ok, ref} ->
            GenServer.reply(from, if(opts[:stream], do: {:stream, ref}, else: {:ok, ref}))
            %{state | current: {ref, caller}}

          {:error, reason} ->
            GenServer.reply(from, {:error, reason})
            next(state)
        end
    end
  end

  defp next(state), do: state
end
