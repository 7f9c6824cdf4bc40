defmodule Gemma4 do
  @moduledoc """
  Gemma 4 text models from Elixir, over the C library gemma4 (`abi/gemma4.h`).

      {:ok, model} = Gemma4.load("path/to/gemma-4-E2B-it", n_ctx: 4096)
      {:ok, session} = Gemma4.session(model)
      {:ok, ref} = Gemma4.chat(session, [{"user", "Why is the sky blue?"}], max_tokens: 256)
      # the caller receives {:gemma4_token, ref, text} ... then {:gemma4_done, ref, stats}
      {:ok, text, stats} = Gemma4.await(ref)

  ## Handles
  Models and sessions are NIF resources, freed by the garbage collector once no process refers
  to them. A session keeps its model alive, so dropping the model first is fine. A model may be
  shared by any number of processes and sessions. A session serves one call at a time: a call
  on a session that is stepping or generating returns `{:error, {:busy, message}}` rather than
  waiting. `cancel/1` is the exception and may be called from any process at any time.

  ## Scheduling
  Loading runs on a dirty I/O scheduler; `step/3`, `sample/1`, `truncate/2`, tokenizing, chat
  rendering and session creation on dirty CPU schedulers. `generate/3` and `chat/3` start a worker thread and return at once,
  so no scheduler is blocked while tokens are produced.

  ## Streaming
  `generate/3` and `chat/3` return `{:ok, ref}` and send to the caller (or to `opts[:to]`):

    * `{:gemma4_token, ref, text}` for each piece of text, in order (a UTF-8 sequence split
      across tokens is held back until complete; tokens that add no text send nothing),
    * then exactly one of `{:gemma4_done, ref, stats}` or `{:gemma4_error, ref, {code, message}}`.

  `stats` is `%{prompt_tokens:, gen_tokens:, prompt_us:, gen_us:, n_past:, n_evaluated:}`.
  When the final message arrives the session is already free for the next call. `cancel/1`
  ends a generation with `{:gemma4_error, ref, {:cancelled, message}}`; the tokens already run
  stay in the session's context. If the receiver exits, generation stops at the next token.

  ## Errors
  Failures are `{:error, {code, message}}` where `code` is one of `:invalid_argument`, `:io`,
  `:format`, `:unsupported`, `:out_of_memory`, `:device`, `:context_full`,
  `:buffer_too_small`, `:internal`, `:invalid_token`, `:cancelled`, `:config`, `:no_tokenizer`
  (the `GEMMA4_ERR_*` statuses), `:busy`, or an integer for a status newer than this binding.
  Arguments of the wrong type raise `ArgumentError`.

  ## Logits
  `step(session, tokens, logits: true)` returns the last position's logits as a binary of
  `vocab_size` native-endian 32-bit floats: `Nx.from_binary(bin, :f32)` reads it, or
  `logits_to_list/1` without Nx.
  """

  alias Gemma4.Native

  @type model :: reference()
  @type session :: reference()
  @type code :: atom() | integer()
  @type error :: {:error, {code(), String.t()}}
  @type message :: {String.t() | atom(), String.t()} | %{role: term(), content: String.t()}

  @model_keys [
    vocab_size: 0,
    context_length: 1,
    n_layers: 2,
    bos_id: 3,
    eos_id: 4,
    weight_bytes: 5,
    hidden_size: 6,
    n_ctx: 7,
    end_of_turn_id: 8,
    device: 9
  ]
  @session_keys [
    n_past: 0,
    n_ctx: 1,
    kv_bytes: 2,
    n_evaluated: 3,
    last_prompt_tokens: 4,
    last_gen_tokens: 5,
    last_prompt_us: 6,
    last_gen_us: 7,
    precision: 8
  ]
  @precisions [fp32: 0, bf16: 1]

  @doc "Version string and ABI version of the loaded libgemma4, e.g. `{\"0.1.0\", 0}`."
  @spec version() :: {String.t(), integer()}
  def version, do: Native.version()

  @doc false
  # {live model resources, live session resources}: lets tests watch the destructors run.
  def live_handles, do: Native.live_handles()

  @doc """
  Loads a Hugging Face Gemma 4 checkpoint directory.

  Options: `:device` (`:cpu` (default) or `:cuda`), `:device_index` (0), `:n_ctx` (default
  context of new sessions; 0 = min(8192, the model's maximum)), `:n_threads` (0 = all cores),
  `:in_memory` (false: the weight files are memory-mapped and must not be truncated or rewritten
  while loaded, which would kill the VM with SIGBUS; true: they are read into memory).
  """
  @spec load(Path.t(), keyword()) :: {:ok, model()} | error()
  def load(path, opts \\ []) do
    device =
      case Keyword.get(opts, :device, :cpu) do
        :cpu -> 0
        :cuda -> 1
        other -> other
      end

    Native.load(
      path,
      device,
      Keyword.get(opts, :device_index, 0),
      Keyword.get(opts, :n_ctx, 0),
      Keyword.get(opts, :n_threads, 0),
      if(Keyword.get(opts, :in_memory, false), do: 1, else: 0)
    )
  end

  @doc """
  Model properties as a map: `vocab_size`, `context_length`, `n_layers`, `bos_id`, `eos_id`,
  `weight_bytes`, `hidden_size`, `n_ctx`, `end_of_turn_id`, `device`, `variant`.
  """
  @spec model_info(model()) :: {:ok, map()} | error()
  def model_info(model) do
    with {:ok, variant} <- Native.model_variant(model) do
      collect(@model_keys, %{variant: variant}, &Native.model_info(model, &1))
    end
  end

  @doc "Tokenizes UTF-8 text. Option `add_bos: true` prepends `<bos>`."
  @spec tokenize(model(), iodata(), keyword()) :: {:ok, [integer()]} | error()
  def tokenize(model, text, opts \\ []) do
    Native.tokenize(model, text, if(Keyword.get(opts, :add_bos, false), do: 1, else: 0))
  end

  @doc "Decodes token ids to text. Option `skip_special: true` drops control tokens."
  @spec detokenize(model(), [integer()], keyword()) :: {:ok, String.t()} | error()
  def detokenize(model, ids, opts \\ []) do
    Native.detokenize(model, ids, if(Keyword.get(opts, :skip_special, false), do: 1, else: 0))
  end

  @doc "The bytes one token adds to a stream of text (may be part of a UTF-8 sequence)."
  @spec token_piece(model(), integer()) :: {:ok, binary()} | error()
  def token_piece(model, token), do: Native.token_piece(model, token)

  @doc """
  Renders messages in Gemma 4's chat format (starting with `<bos>`). Messages are
  `{role, content}` tuples or maps with `:role` and `:content`; roles are "system", "user",
  "assistant" or "model" (atoms work too). Option `add_generation_prompt` (default true) opens
  the model's turn. `model` may be nil.
  """
  @spec chat_template(model() | nil, [message()], keyword()) :: {:ok, String.t()} | error()
  def chat_template(model, messages, opts \\ []) do
    {roles, contents} = split_messages(messages)
    add = if Keyword.get(opts, :add_generation_prompt, true), do: 1, else: 0
    Native.chat_apply(model, roles, contents, add)
  end

  @doc """
  Creates a session (KV cache, sampler, stop strings). Options: `:n_ctx` (0 = the model's
  default), and any option of `configure/2`.
  """
  @spec session(model(), keyword()) :: {:ok, session()} | error()
  def session(model, opts \\ []) do
    with {:ok, session} <- Native.session_new(model, Keyword.get(opts, :n_ctx, 0)),
         :ok <- configure(session, Keyword.delete(opts, :n_ctx)) do
      {:ok, session}
    end
  end

  @doc """
  Sets options of a session (those not given keep their current value):

    * `temperature:` 0 means greedy (the default); with > 0, `top_k:` (0 = off),
      `top_p:` (1.0 = off) and `min_p:` (0.0 = off) apply,
    * `seed:` the sampler's RNG seed,
    * `repetition_penalty:` (1.0 = off) over the last `penalty_last_n:` tokens (0 = all),
    * `stop:` a list of stop strings, replacing the current ones,
    * `precision:` `:fp32` or `:bf16` (see `set_precision/2`).
  """
  @spec configure(session(), keyword()) :: :ok | error()
  def configure(session, opts) do
    steps = [
      fn ->
        case Keyword.fetch(opts, :precision) do
          :error -> :ok
          {:ok, precision} -> set_precision(session, precision)
        end
      end,
      fn ->
        case Keyword.fetch(opts, :temperature) do
          :error ->
            :ok

          {:ok, t} when t == 0 ->
            Native.set_greedy(session)

          {:ok, t} ->
            Native.set_sampling(
              session,
              float(t),
              Keyword.get(opts, :top_k, 0),
              float(Keyword.get(opts, :top_p, 1.0)),
              float(Keyword.get(opts, :min_p, 0.0))
            )
        end
      end,
      fn ->
        if seed = opts[:seed], do: Native.set_seed(session, seed), else: :ok
      end,
      fn ->
        case opts[:repetition_penalty] do
          nil ->
            :ok

          p ->
            Native.set_repetition_penalty(
              session,
              float(p),
              Keyword.get(opts, :penalty_last_n, 0)
            )
        end
      end,
      fn ->
        case Keyword.fetch(opts, :stop) do
          :error ->
            :ok

          {:ok, stops} ->
            Enum.reduce_while(stops, Native.clear_stops(session), fn
              stop, :ok -> {:cont, Native.add_stop(session, stop)}
              _, err -> {:halt, err}
            end)
        end
      end
    ]

    Enum.reduce_while(steps, :ok, fn f, :ok ->
      case f.() do
        :ok -> {:cont, :ok}
        err -> {:halt, err}
      end
    end)
  end

  @doc """
  Appends tokens to the session's context and runs them. With `logits: true` returns
  `{:ok, binary}`: the last position's logits as `vocab_size` native-endian f32.
  Invalid ids (`:invalid_token`) and overflow (`:context_full`) leave the session unchanged.
  """
  @spec step(session(), [integer()], keyword()) :: :ok | {:ok, binary()} | error()
  def step(session, tokens, opts \\ []) do
    Native.step(session, tokens, Keyword.get(opts, :logits, false) == true)
  end

  @doc "Samples the next token from the last step's logits (does not append it)."
  @spec sample(session()) :: {:ok, integer()} | error()
  def sample(session), do: Native.sample(session)

  @doc "Empties the session's context (sampler settings and stop strings are kept)."
  @spec reset(session()) :: :ok | error()
  def reset(session), do: Native.kv_reset(session)

  @doc "Rewinds the context to its first `n_keep` tokens (see gemma4_session_truncate)."
  @spec truncate(session(), non_neg_integer()) :: :ok | error()
  def truncate(session, n_keep), do: Native.truncate(session, n_keep)

  @doc """
  Session counters as a map: `n_past`, `n_ctx`, `kv_bytes`, `n_evaluated`,
  `last_prompt_tokens`, `last_gen_tokens`, `last_prompt_us`, `last_gen_us`, and `precision`
  (`:fp32` or `:bf16`).
  """
  @spec session_info(session()) :: {:ok, map()} | error()
  def session_info(session) do
    with {:ok, info} <- collect(@session_keys, %{}, &Native.session_info(session, &1)) do
      {:ok, Map.update!(info, :precision, &precision_name/1)}
    end
  end

  @doc """
  Sets how the session's matrix products treat activations, from the next step on (the KV
  cache is kept): `:fp32` (the default) keeps them fp32; `:bf16` gives llama.cpp's numerics for
  speed: activations rounded to bf16 in the products with bf16 weights and quantized to 8 bits
  (Q8_0 / Q8_K) in those with GGUF block-quantized weights, at about 1e-2 relative logit error
  (a few percent on quantized weights; see `gemma4_session_set_precision` in gemma4.h). An integer is passed to the library as a
  `GEMMA4_PRECISION_*` value (an unknown one gives `{:error, {:invalid_argument, message}}`);
  anything else raises `ArgumentError`.
  """
  @spec set_precision(session(), :fp32 | :bf16 | integer()) :: :ok | error()
  def set_precision(session, precision) do
    value =
      case List.keyfind(@precisions, precision, 0) do
        {_, v} -> v
        nil when is_integer(precision) -> precision
        nil -> raise ArgumentError, "precision must be :fp32 or :bf16, got: #{inspect(precision)}"
      end

    Native.set_precision(session, value)
  end

  @doc "The session's precision: `{:ok, :fp32}` (the default) or `{:ok, :bf16}`."
  @spec precision(session()) :: {:ok, :fp32 | :bf16} | error()
  def precision(session) do
    with {:ok, v} <- Native.session_info(session, @session_keys[:precision]) do
      {:ok, precision_name(v)}
    end
  end

  defp precision_name(value) do
    case List.keyfind(@precisions, value, 1) do
      {name, _} -> name
      nil -> value
    end
  end

  @doc """
  Starts generating from `prompt` appended to the session's context, streaming messages (see
  the module doc) to `opts[:to]` (default: the caller). `max_tokens:` defaults to 256. Other
  options are applied with `configure/2` first.
  """
  @spec generate(session(), iodata(), keyword()) :: {:ok, reference()} | error()
  def generate(session, prompt, opts \\ []) do
    {max_tokens, to, ref} = start_opts(opts)

    with :ok <- configure(session, opts),
         :ok <- Native.generate(session, prompt, max_tokens, to, ref) do
      {:ok, ref}
    end
  end

  @doc """
  Chat with cache reuse: pass the whole conversation every turn (including the model's earlier
  replies); only the messages the session has not yet run are run. Streams like `generate/3`.
  """
  @spec chat(session(), [message()], keyword()) :: {:ok, reference()} | error()
  def chat(session, messages, opts \\ []) do
    {roles, contents} = split_messages(messages)
    {max_tokens, to, ref} = start_opts(opts)

    with :ok <- configure(session, opts),
         :ok <- Native.chat_generate(session, roles, contents, max_tokens, to, ref) do
      {:ok, ref}
    end
  end

  @doc """
  Stops a running `generate/3`, `chat/3` or `step/3` on this session at the next token or
  micro-batch boundary. Does nothing when the session is idle. Any process may call it.
  """
  @spec cancel(session()) :: :ok
  def cancel(session), do: Native.cancel(session)

  @doc """
  Collects the messages of a generation started by the calling process:
  `{:ok, text, stats}` or `{:error, {code, message}}`. On timeout returns
  `{:error, {:timeout, message}}` and leaves the generation running (cancel it if needed).
  """
  @spec await(reference(), timeout()) :: {:ok, String.t(), map()} | error()
  def await(ref, timeout \\ :infinity), do: await(ref, timeout, [])

  defp await(ref, timeout, acc) do
    receive do
      {:gemma4_token, ^ref, text} -> await(ref, timeout, [acc | text])
      {:gemma4_done, ^ref, stats} -> {:ok, IO.iodata_to_binary(acc), stats}
      {:gemma4_error, ^ref, reason} -> {:error, reason}
    after
      timeout -> {:error, {:timeout, "no message from the generation within #{timeout} ms"}}
    end
  end

  @doc "`generate/3` then `await/1`: `{:ok, text, stats}` or `{:error, {code, message}}`."
  @spec generate_text(session(), iodata(), keyword()) :: {:ok, String.t(), map()} | error()
  def generate_text(session, prompt, opts \\ []) do
    with {:ok, ref} <- generate(session, prompt, Keyword.delete(opts, :to)), do: await(ref)
  end

  @doc "`chat/3` then `await/1`."
  @spec chat_text(session(), [message()], keyword()) :: {:ok, String.t(), map()} | error()
  def chat_text(session, messages, opts \\ []) do
    with {:ok, ref} <- chat(session, messages, Keyword.delete(opts, :to)), do: await(ref)
  end

  @doc """
  A lazy `Stream` of text pieces of `generate/3`. Halting it early (e.g. `Enum.take/2`)
  cancels the generation. A failure raises `Gemma4.Error`.
  """
  @spec stream(session(), iodata(), keyword()) :: Enumerable.t()
  def stream(session, prompt, opts \\ []) do
    Stream.resource(
      fn ->
        case generate(session, prompt, Keyword.delete(opts, :to)) do
          {:ok, ref} -> {ref, :running}
          {:error, reason} -> raise Gemma4.Error, reason
        end
      end,
      fn
        {ref, :running} ->
          receive do
            {:gemma4_token, ^ref, text} -> {[text], {ref, :running}}
            {:gemma4_done, ^ref, _stats} -> {:halt, {ref, :finished}}
            # raised on the next call, so that the after function sees the generation ended
            {:gemma4_error, ^ref, reason} -> {[], {ref, {:failed, reason}}}
          end

        {_ref, {:failed, reason}} ->
          raise Gemma4.Error, reason

        {ref, :finished} ->
          {:halt, {ref, :finished}}
      end,
      fn
        {ref, :running} ->
          cancel(session)
          flush(ref)

        _ ->
          :ok
      end
    )
  end

  # Drops a cancelled generation's remaining messages, up to its final one.
  defp flush(ref) do
    receive do
      {:gemma4_token, ^ref, _} -> flush(ref)
      {:gemma4_done, ^ref, _} -> :ok
      {:gemma4_error, ^ref, _} -> :ok
    end
  end

  @chat_opts [
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
    repetition_penalty: nil,
    to: nil
  ]

  @doc """
  Chat completion with tools and thinking (`gemma4_chat_complete`): the library renders the
  conversation and parses the reply. `messages` are OpenAI-style maps (atom or string keys):
  `%{role: "user", content: "..."}`, assistant turns with `tool_calls:
  [%{id: "call_0", type: "function", function: %{name: "f", arguments: %{...}}}]` and
  `reasoning_content:`, tool results as `%{role: "tool", tool_call_id: "call_0", content: ...}`.
  Pass the whole conversation every turn: the cached prefix is reused.

  Options (`Keyword.validate!/2`: an unknown option raises): `tools:` (OpenAI tool maps),
  `max_tokens:` (256), `enable_thinking:`, `preserve_thinking:`, `temperature:`, `top_k:`,
  `top_p:`, `min_p:` (unset: the model's generation_config.json defaults; temperature 0 is
  greedy), `seed:`, `stop:`, `repetition_penalty:`, `to:` (receiver, default the caller).

  Streams `{:gemma4_event, ref, {:text | :reasoning, binary}}` and
  `{:gemma4_event, ref, {:tool_call, json}}`, then `{:gemma4_chat_done, ref, result_json}` or
  `{:gemma4_error, ref, {code, message}}`. Texts are always valid UTF-8 (partial characters
  are held back, stray bytes become U+FFFD). `await_chat/2` collects them.
  """
  @spec chat_completion(session(), [map()], keyword()) :: {:ok, reference()} | error()
  def chat_completion(session, messages, opts \\ []) do
    opts = Keyword.validate!(opts, @chat_opts)
    messages_json = Gemma4.JSON.encode!(messages)
    tools_json = if opts[:tools] in [nil, []], do: nil, else: Gemma4.JSON.encode!(opts[:tools])
    flags = if(opts[:enable_thinking], do: 4, else: 0) + if(opts[:preserve_thinking], do: 8, else: 0)
    ref = make_ref()

    with :ok <- configure_request(session, opts),
         :ok <-
           Native.chat_complete(session, messages_json, tools_json, flags, opts[:max_tokens],
             opts[:to] || self(), ref) do
      {:ok, ref}
    end
  end

  # The model's sampling defaults, then the given values on top.
  defp configure_request(session, opts) do
    with :ok <- Native.reset_sampling(session),
         :ok <- sampling_overrides(session, opts),
         :ok <- configure(session, Keyword.take(opts, [:seed, :stop])) do
      case opts[:repetition_penalty] do
        nil -> Native.set_repetition_penalty(session, 1.0, 0)
        p -> Native.set_repetition_penalty(session, float(p), 0)
      end
    end
  end

  defp sampling_overrides(session, opts) do
    keys = [:temperature, :top_k, :top_p, :min_p]

    if Enum.all?(keys, &is_nil(opts[&1])) do
      :ok
    else
      with {:ok, {t, k, p, m}} <- Native.get_sampling(session) do
        t = opts[:temperature] || t
        if t == 0 do
          Native.set_greedy(session)
        else
          Native.set_sampling(session, float(t), opts[:top_k] || k, float(opts[:top_p] || p),
            float(opts[:min_p] || m))
        end
      end
    end
  end

  @doc """
  Collects a `chat_completion/3`: `{:ok, result}` with `result` a map
  `%{content:, reasoning: nil | binary, tool_calls: [%{id:, name:, arguments: map}],
  finish_reason: :stop | :length | :tool_calls | :cancelled, usage: %{prompt_tokens:,
  cached_tokens:, completion_tokens:, total_tokens:}}`, or `{:error, {code, message}}`.
  """
  @spec await_chat(reference(), timeout()) :: {:ok, map()} | error()
  def await_chat(ref, timeout \\ :infinity) do
    receive do
      {:gemma4_event, ^ref, _} -> await_chat(ref, timeout)
      {:gemma4_chat_done, ^ref, json} -> {:ok, decode_result(json)}
      {:gemma4_error, ^ref, reason} -> {:error, reason}
    after
      timeout -> {:error, {:timeout, "no message from the chat completion within #{timeout} ms"}}
    end
  end

  @doc false
  def decode_result(json) do
    r = Gemma4.JSON.decode!(json)
    u = r["usage"]

    %{
      content: r["content"],
      reasoning: r["reasoning"],
      tool_calls: Enum.map(r["tool_calls"], &decode_call/1),
      finish_reason: String.to_existing_atom(r["finish_reason"]),
      usage: %{
        prompt_tokens: u["prompt_tokens"],
        cached_tokens: u["cached_tokens"],
        completion_tokens: u["completion_tokens"],
        total_tokens: u["total_tokens"]
      }
    }
  end

  @doc false
  def decode_call(json) when is_binary(json), do: decode_call(Gemma4.JSON.decode!(json))
  def decode_call(%{"id" => id, "name" => name, "arguments" => args}),
    do: %{id: id, name: name, arguments: args}

  @doc """
  The prompt text transformers' `apply_chat_template(messages, tools=...)` renders (for display
  or logs). Options: `tools:`, `add_generation_prompt:` (true), `enable_thinking:` (false).
  """
  @spec render_chat(model() | nil, [map()], keyword()) :: {:ok, String.t()} | error()
  def render_chat(model, messages, opts \\ []) do
    opts = Keyword.validate!(opts, tools: nil, add_generation_prompt: true, enable_thinking: false)
    tools = if opts[:tools] in [nil, []], do: nil, else: Gemma4.JSON.encode!(opts[:tools])
    flags = if(opts[:add_generation_prompt], do: 1, else: 0) + if(opts[:enable_thinking], do: 4, else: 0)
    Native.chat_render(model, Gemma4.JSON.encode!(messages), tools, flags)
  end

  @doc "Testing aid: the next generation on `session` takes these token ids instead of sampling."
  @spec force_tokens(session(), [integer()]) :: :ok | error()
  def force_tokens(session, ids) when is_list(ids), do: Native.force_tokens(session, ids)

  @doc "Decodes a logits binary of native-endian f32 into a list of floats."
  @spec logits_to_list(binary()) :: [float()]
  def logits_to_list(bin) when is_binary(bin), do: for(<<x::float-32-native <- bin>>, do: x)

  defp start_opts(opts) do
    {Keyword.get(opts, :max_tokens, 256), Keyword.get(opts, :to, self()), make_ref()}
  end

  defp split_messages(messages) when is_list(messages) do
    messages
    |> Enum.map(fn
      {role, content} -> {to_string(role), content}
      %{role: role, content: content} -> {to_string(role), content}
      %{"role" => role, "content" => content} -> {to_string(role), content}
      other -> raise ArgumentError, "not a chat message: #{inspect(other)}"
    end)
    |> Enum.unzip()
  end

  defp split_messages(other), do: raise(ArgumentError, "not a message list: #{inspect(other)}")

  defp collect(keys, acc, fun) do
    Enum.reduce_while(keys, {:ok, acc}, fn {name, key}, {:ok, map} ->
      case fun.(key) do
        {:ok, v} -> {:cont, {:ok, Map.put(map, name, v)}}
        err -> {:halt, err}
      end
    end)
  end

  defp float(x) when is_number(x), do: x / 1
  defp float(x), do: raise(ArgumentError, "expected a number, got: #{inspect(x)}")
end

defmodule Gemma4.Error do
  @moduledoc "Raised by `Gemma4.stream/3`; `code` and `message` as in `{:error, {code, message}}`."
  defexception [:code, :message]

  @impl true
  def exception({code, message}), do: %__MODULE__{code: code, message: message}

  @impl true
  def message(%{code: code, message: message}), do: "#{inspect(code)}: #{message}"
end
