# ExUnit tests of the Elixir binding on the golden fixtures (tests/golden, see its README):
# logits and greedy tokens against transformers, streaming, cancellation, the documented errors,
# and handle lifetimes. GEMMA4_FIXTURES overrides the fixture directory.
defmodule Gemma4Test do
  use ExUnit.Case, async: false
  import Bitwise

  @golden System.get_env("GEMMA4_FIXTURES") || Path.expand("../../../tests/golden", __DIR__)
  # max |diff| / max |ref| over the logits row, as tests/test_forward_cpu.c (TOL_FP32)
  @tol_fp32 1.0e-4

  defp fixture(name), do: Path.join(@golden, name)

  defp load!(name, opts \\ []) do
    {:ok, model} = Gemma4.load(fixture(name), Keyword.merge([n_ctx: 128, n_threads: 2], opts))
    model
  end

  defp session!(model, opts \\ []) do
    {:ok, session} = Gemma4.session(model, opts)
    session
  end

  # reference.bin: "G4REF1\0\0", n_tokens, vocab, tokens, logits (n_tokens x vocab), n_gen, gen
  defp reference(name) do
    <<"G4REF1", 0, 0, n::little-signed-32, vocab::little-signed-32, rest::binary>> =
      File.read!(Path.join(fixture(name), "reference.bin"))

    <<tokens::binary-size(n * 4), logits::binary-size(n * vocab * 4), n_gen::little-signed-32,
      gen::binary-size(n_gen * 4)>> = rest

    ints = fn bin -> for <<x::little-signed-32 <- bin>>, do: x end
    last_row = binary_part(logits, (n - 1) * vocab * 4, vocab * 4)

    %{
      tokens: ints.(tokens),
      vocab: vocab,
      last_logits: for(<<x::float-32-little <- last_row>>, do: x),
      gen: ints.(gen)
    }
  end

  defp max_rel_diff(got, ref) do
    max_ref = ref |> Enum.map(&abs/1) |> Enum.max()
    max_diff = Enum.zip(got, ref) |> Enum.map(fn {a, b} -> abs(a - b) end) |> Enum.max()
    max_diff / max_ref
  end

  # All messages of one generation, in arrival order, up to and including the final one.
  defp collect(ref, acc \\ []) do
    receive do
      {:gemma4_token, ^ref, _} = m -> collect(ref, [m | acc])
      {:gemma4_done, ^ref, _} = m -> Enum.reverse([m | acc])
      {:gemma4_error, ^ref, _} = m -> Enum.reverse([m | acc])
    after
      30_000 -> flunk("no final message within 30 s")
    end
  end

  defp wait_until(fun, tries \\ 200) do
    cond do
      fun.() -> :ok
      tries == 0 -> flunk("condition not reached")
      true -> Process.sleep(10) && wait_until(fun, tries - 1)
    end
  end

  describe "numerics against transformers" do
    for name <- ["e2b", "moe"] do
      test "#{name}: last-position logits as a native f32 binary" do
        r = reference(unquote(name))
        s = session!(load!(unquote(name)))
        assert {:ok, bin} = Gemma4.step(s, r.tokens, logits: true)
        assert byte_size(bin) == r.vocab * 4
        logits = for <<x::float-32-native <- bin>>, do: x
        assert logits == Gemma4.logits_to_list(bin)
        rel = max_rel_diff(logits, r.last_logits)
        IO.puts("#{unquote(name)}: logits rel diff #{:io_lib.format("~.3e", [rel])}")
        assert rel <= @tol_fp32
        assert {:ok, %{n_past: 48}} = Gemma4.session_info(s)
      end

      test "#{name}: greedy tokens equal transformers' generate" do
        r = reference(unquote(name))
        s = session!(load!(unquote(name)))
        assert :ok = Gemma4.step(s, r.tokens)

        got =
          Enum.map(r.gen, fn _ ->
            {:ok, tok} = Gemma4.sample(s)
            :ok = Gemma4.step(s, [tok])
            tok
          end)

        assert got == r.gen
      end
    end

    test "in_memory: the loaded model survives truncation of its weight file" do
      dir = Path.join(System.tmp_dir!(), "g4ex_inmem_#{System.unique_integer([:positive])}")
      File.mkdir_p!(dir)

      try do
        for f <- ["config.json", "model.safetensors"], do: File.cp!(Path.join(fixture("e2b"), f), Path.join(dir, f))
        r = reference("e2b")
        {:ok, model} = Gemma4.load(dir, n_ctx: 64, n_threads: 2, in_memory: true)
        File.write!(Path.join(dir, "model.safetensors"), "")
        s = session!(model)
        {:ok, got} = Gemma4.step(s, Enum.take(r.tokens, 4), logits: true)
        {:ok, m2} = Gemma4.load(fixture("e2b"), n_ctx: 64, n_threads: 2)
        s2 = session!(m2)
        {:ok, want} = Gemma4.step(s2, Enum.take(r.tokens, 4), logits: true)
        assert got == want
      after
        File.rm_rf!(dir)
      end
    end

    test "logits of a prefill split in two steps equal the one-step prefill" do
      r = reference("e2b")
      model = load!("e2b")
      {a, b} = Enum.split(r.tokens, 29)
      s1 = session!(model)
      s2 = session!(model)
      {:ok, whole} = Gemma4.step(s1, r.tokens, logits: true)
      :ok = Gemma4.step(s2, a)
      {:ok, split} = Gemma4.step(s2, b, logits: true)
      assert max_rel_diff(Gemma4.logits_to_list(split), Gemma4.logits_to_list(whole)) <= 1.0e-5
    end
  end

  # The fixtures' weights are F32, on which bf16 mode changes nothing numerically (the numeric
  # comparison lives in tests/test_forward_cpu.c), so these check the setting, not the math.
  describe "precision" do
    test "defaults to :fp32, switches to :bf16 and back, keeps the cache" do
      r = reference("e2b")
      s = session!(load!("e2b"))
      assert {:ok, :fp32} = Gemma4.precision(s)
      assert {:ok, %{precision: :fp32}} = Gemma4.session_info(s)
      assert :ok = Gemma4.set_precision(s, :bf16)
      assert {:ok, :bf16} = Gemma4.precision(s)
      assert {:ok, %{precision: :bf16}} = Gemma4.session_info(s)
      # a step in bf16 mode; float-32 patterns skip NaN and Inf,
      # so a full-length list means every logit is finite
      assert {:ok, bin} = Gemma4.step(s, r.tokens, logits: true)
      assert length(Gemma4.logits_to_list(bin)) == r.vocab
      assert :ok = Gemma4.set_precision(s, :fp32)
      assert {:ok, :fp32} = Gemma4.precision(s)
      assert {:ok, %{n_past: 48}} = Gemma4.session_info(s)
      assert :ok = Gemma4.set_precision(s, 1)
      assert {:ok, :bf16} = Gemma4.precision(s)
    end

    test "as a session, configure and generate option" do
      model = load!("e2b")
      s = session!(model, n_ctx: 64, precision: :bf16)
      assert {:ok, %{precision: :bf16, n_ctx: 64}} = Gemma4.session_info(s)
      assert {:ok, text, %{gen_tokens: n}} = Gemma4.generate_text(s, "The sea", max_tokens: 4)
      assert is_binary(text) and n > 0
      assert {:ok, :bf16} = Gemma4.precision(s)
      assert :ok = Gemma4.configure(s, precision: :fp32)
      assert {:ok, :fp32} = Gemma4.precision(s)
      assert :ok = Gemma4.configure(s, temperature: 0)
      assert {:ok, :fp32} = Gemma4.precision(s)
    end

    test "an unknown precision is an error and changes nothing" do
      model = load!("e2b")
      s = session!(model, precision: :bf16)

      for bad <- [7, -1] do
        assert {:error, {:invalid_argument, msg}} = Gemma4.set_precision(s, bad)
        assert msg =~ "unknown precision #{bad}"
      end

      assert {:error, {:invalid_argument, msg}} = Gemma4.configure(s, precision: 5)
      assert msg =~ "unknown precision 5"
      assert {:error, {:invalid_argument, _}} = Gemma4.session(model, precision: 2)
      assert {:ok, :bf16} = Gemma4.precision(s)
      assert_raise ArgumentError, fn -> Gemma4.set_precision(s, :fp16) end
      assert_raise ArgumentError, fn -> Gemma4.set_precision(s, "bf16") end
      assert_raise ArgumentError, fn -> Gemma4.set_precision(s, 1 <<< 40) end
      assert_raise ArgumentError, fn -> Gemma4.set_precision(model, :bf16) end
    end
  end

  describe "streaming" do
    test "pieces arrive in order and concatenate to the non-streamed text" do
      model = load!("e2b", n_ctx: 256)
      s = session!(model)
      assert {:ok, ref} = Gemma4.generate(s, "The sea", max_tokens: 40)
      messages = collect(ref)
      {tokens, [{:gemma4_done, ^ref, stats}]} = Enum.split(messages, -1)
      assert tokens != []
      assert Enum.all?(tokens, &match?({:gemma4_token, ^ref, text} when byte_size(text) > 0, &1))
      streamed = Enum.map_join(tokens, fn {_, _, text} -> text end)
      assert stats.gen_tokens > 0 and stats.gen_tokens <= 40
      assert stats.n_past == stats.prompt_tokens + stats.gen_tokens

      # the same greedy run, collected by Gemma4.generate_text on a fresh session
      assert {:ok, text, stats2} =
               Gemma4.generate_text(session!(model), "The sea", max_tokens: 40)

      assert text == streamed
      assert stats2.gen_tokens == stats.gen_tokens

      # and token by token through step/sample/token_piece (detokenize would differ: like
      # Hugging Face it replaces the random model's invalid UTF-8 with U+FFFD)
      {:ok, prompt} = Gemma4.tokenize(model, "The sea", add_bos: true)
      {:ok, info} = Gemma4.model_info(model)
      s3 = session!(model)
      :ok = Gemma4.step(s3, prompt)

      ids =
        Enum.reduce_while(1..stats.gen_tokens, [], fn _, acc ->
          {:ok, tok} = Gemma4.sample(s3)
          :ok = Gemma4.step(s3, [tok])
          {:cont, [tok | acc]}
        end)
        |> Enum.reverse()

      assert info.eos_id not in ids and info.end_of_turn_id not in ids

      pieces =
        Enum.map(ids, fn id ->
          {:ok, piece} = Gemma4.token_piece(model, id)
          piece
        end)

      assert IO.iodata_to_binary(pieces) == streamed
    end

    test "messages go to the :to process, and Stream halts early with a cancel" do
      model = load!("e2b", n_ctx: 256)
      s = session!(model)
      parent = self()

      receiver =
        spawn(fn ->
          receive do
            {:go, ref} -> send(parent, {:collected, collect(ref)})
          end
        end)

      {:ok, ref} = Gemma4.generate(s, "The sea", max_tokens: 10, to: receiver)
      send(receiver, {:go, ref})
      assert_receive {:collected, msgs}, 10_000
      assert {:gemma4_done, ^ref, %{gen_tokens: n}} = List.last(msgs)
      assert n > 0
      refute_received {:gemma4_token, ^ref, _}

      pieces = s |> Gemma4.stream("The sea", max_tokens: 40) |> Enum.take(3)
      assert length(pieces) == 3
      # the stream cancelled and drained its generation: the session is free, the mailbox empty
      assert {:ok, %{n_past: _}} = Gemma4.session_info(s)
      refute_received {:gemma4_token, _, _}
      refute_received {:gemma4_done, _, _}
      refute_received {:gemma4_error, _, _}
    end

    test "chat reuses the session's cache for the conversation prefix" do
      model = load!("e2b", n_ctx: 512)
      s = session!(model)
      turn1 = [{"system", "You are terse."}, {:user, "Hi there, how are you?"}]

      turn2 =
        turn1 ++ [%{role: "model", content: "Fine, thanks."}, %{role: :user, content: "More."}]

      {:ok, r1} = Gemma4.chat_template(nil, turn1)
      {:ok, r2} = Gemma4.chat_template(model, turn2)
      {:ok, ids1} = Gemma4.tokenize(model, r1)
      {:ok, ids2} = Gemma4.tokenize(model, r2)

      assert {:ok, "", %{n_evaluated: ev1, n_past: p1}} =
               Gemma4.chat_text(s, turn1, max_tokens: 0)

      assert ev1 == length(ids1) and p1 == length(ids1)
      assert {:ok, "", %{n_evaluated: ev2}} = Gemma4.chat_text(s, turn2, max_tokens: 0)
      assert ev2 - ev1 == length(ids2) - length(ids1)
    end
  end

  describe "cancellation" do
    test "cancel mid-generation from another process ends with :cancelled" do
      model = load!("e2b", n_ctx: 8192)
      s = session!(model)
      assert {:ok, ref} = Gemma4.generate(s, "The sea", max_tokens: 8000)
      assert_receive {:gemma4_token, ^ref, _}, 10_000
      # while it runs, the session refuses other calls instead of blocking a scheduler
      assert {:error, {:busy, _}} = Gemma4.step(s, [2])
      assert {:error, {:busy, _}} = Gemma4.generate(s, "x")
      canceller = Task.async(fn -> Gemma4.cancel(s) end)
      assert :ok = Task.await(canceller)
      messages = collect(ref)
      assert {:gemma4_error, ^ref, {:cancelled, msg}} = List.last(messages)
      assert msg =~ "cancel"
      {:ok, info} = Gemma4.session_info(s)
      n_tokens = length(messages)
      IO.puts("cancelled after #{info.n_past} positions (#{n_tokens} messages): #{msg}")
      assert info.n_past < 8000
      # the tokens run so far stay in the context, and the session works on
      assert :ok = Gemma4.step(s, [2])
      assert {:ok, %{n_past: n}} = Gemma4.session_info(s)
      assert n == info.n_past + 1
    end

    test "cancel on an idle session does not cancel the next generation" do
      s = session!(load!("e2b"))
      assert :ok = Gemma4.cancel(s)
      assert {:ok, _text, %{gen_tokens: 5}} = Gemma4.generate_text(s, "The sea", max_tokens: 5)
    end

    test "generation stops when its receiver exits" do
      s = session!(load!("e2b", n_ctx: 8192))
      receiver = spawn(fn -> receive(do: (:never -> :ok)) end)
      {:ok, _ref} = Gemma4.generate(s, "The sea", max_tokens: 8000, to: receiver)
      Process.exit(receiver, :kill)
      wait_until(fn -> match?({:ok, _}, Gemma4.session_info(s)) end)
      {:ok, info} = Gemma4.session_info(s)
      assert info.n_past < 8000
    end
  end

  describe "bad input returns error tuples" do
    test "load" do
      assert {:error, {:io, msg}} = Gemma4.load("/nonexistent/model")
      assert msg =~ "/nonexistent/model"
      assert {:error, {:io, msg}} = Gemma4.load(Path.expand("..", __DIR__))
      assert msg =~ "config.json"
      assert {:error, {:invalid_argument, msg}} = Gemma4.load(fixture("e2b"), device: 7)
      assert msg =~ "device 7"
      assert {:error, {:invalid_argument, _}} = Gemma4.load(fixture("e2b") <> <<0>> <> "x")
    end

    test "tokens, context and sampler settings" do
      model = load!("e2b")
      s = session!(model, n_ctx: 16)
      assert {:error, {:invalid_token, msg}} = Gemma4.step(s, [2, 512])
      assert msg =~ "512"
      assert {:error, {:invalid_token, _}} = Gemma4.step(s, [-1])
      assert {:error, {:invalid_token, _}} = Gemma4.step(s, [2, 1 <<< 40])
      assert {:error, {:context_full, msg}} = Gemma4.step(s, List.duplicate(3, 17))
      assert msg =~ "16"
      assert {:error, {:invalid_argument, msg}} = Gemma4.sample(s)
      assert msg =~ "no logits"
      assert {:ok, %{n_past: 0}} = Gemma4.session_info(s)
      assert {:error, {:invalid_argument, _}} = Gemma4.truncate(s, 17)
      assert {:error, {:invalid_argument, msg}} = Gemma4.configure(s, temperature: -1)
      assert msg =~ "temperature"
      assert {:error, {:invalid_argument, msg}} = Gemma4.configure(s, temperature: 1, top_p: 1.5)
      assert msg =~ "top_p"
      assert {:error, {:invalid_argument, _}} = Gemma4.configure(s, stop: [""])
      assert {:error, {:invalid_token, _}} = Gemma4.detokenize(model, [1 <<< 40])
      assert {:error, {:invalid_token, _}} = Gemma4.detokenize(model, [512])
      assert {:error, {:invalid_argument, _}} = Gemma4.chat_template(nil, [{"robot", "hi"}])
      # a prompt that does not fit runs nothing
      assert {:error, {:context_full, _}} =
               Gemma4.generate_text(s, "a b c d e f g h i j k l m n o p q r s", max_tokens: 5)

      # an embedded NUL is refused wherever the string goes to a NUL-terminated C parameter
      # (the C side would stop there and silently drop the rest)
      assert {:error, {:invalid_argument, msg}} = Gemma4.generate(s, "nul \0 byte")
      assert msg =~ "NUL"
      assert {:error, {:invalid_argument, msg}} = Gemma4.chat(s, [{"user", "hello\0 IGNORE"}])
      assert msg =~ "NUL"
      assert {:error, {:invalid_argument, msg}} = Gemma4.chat(s, [{"us\0er", "hi"}])
      assert msg =~ "NUL"
      assert {:error, {:invalid_argument, msg}} = Gemma4.configure(s, stop: ["a\0b"])
      assert msg =~ "NUL"
      assert {:error, {:invalid_argument, msg}} =
               Gemma4.chat_template(model, [{"user", "a\0b"}])
      assert msg =~ "NUL"
      assert {:ok, %{n_past: 0}} = Gemma4.session_info(s)
      # and the session is still fine
      assert {:ok, _} = Gemma4.step(s, [2, 3], logits: true)
    end

    test "a model without tokenizer.json" do
      model = load!("moe")
      s = session!(model)
      assert {:error, {:no_tokenizer, _}} = Gemma4.tokenize(model, "hello")
      assert {:error, {:no_tokenizer, _}} = Gemma4.detokenize(model, [5])
      assert {:error, {:no_tokenizer, _}} = Gemma4.generate_text(s, "hello")
      assert {:error, {:no_tokenizer, _}} = Gemma4.chat_text(s, [{"user", "hello"}])
      assert {:ok, %{end_of_turn_id: -1}} = Gemma4.model_info(model)
    end

    test "wrong types raise ArgumentError instead of crashing" do
      model = load!("e2b")
      s = session!(model)
      assert_raise ArgumentError, fn -> Gemma4.load(123) end
      assert_raise ArgumentError, fn -> Gemma4.step(s, ["a"]) end
      assert_raise ArgumentError, fn -> Gemma4.step(s, [1.5]) end
      assert_raise ArgumentError, fn -> Gemma4.step(s, :not_a_list) end
      assert_raise ArgumentError, fn -> Gemma4.step(model, [2]) end
      assert_raise ArgumentError, fn -> Gemma4.session(s) end
      assert_raise ArgumentError, fn -> Gemma4.tokenize(make_ref(), "x") end
      assert_raise ArgumentError, fn -> Gemma4.generate(s, :prompt) end
      assert_raise ArgumentError, fn -> Gemma4.chat(s, [{"user", 42}]) end
      assert_raise ArgumentError, fn -> Gemma4.configure(s, temperature: "hot") end
      assert {:ok, _, _} = Gemma4.generate_text(s, "ok", max_tokens: 2)
    end
  end

  describe "lifetimes" do
    test "a session outlives its garbage-collected model; destructors run" do
      # handles of earlier tests go when their processes and generation threads have ended
      wait_until(fn -> Gemma4.live_handles() == {0, 0} end)
      r = reference("e2b")
      parent = self()

      # the model term lives only in this process, which exits
      spawn(fn ->
        model = load!("e2b")
        send(parent, {:session, session!(model)})
      end)

      assert_receive {:session, s}, 10_000
      # the model resource stays: the session holds it
      Process.sleep(50)
      :erlang.garbage_collect()
      assert Gemma4.live_handles() == {1, 1}
      assert {:ok, bin} = Gemma4.step(s, r.tokens, logits: true)
      assert max_rel_diff(Gemma4.logits_to_list(bin), r.last_logits) <= @tol_fp32

      # dropping the session (in a process that ends) frees both
      task = Task.async(fn -> Gemma4.sample(s) end)
      assert {:ok, _} = Task.await(task)
      s = nil
      _ = s
      :erlang.garbage_collect()
      wait_until(fn -> Gemma4.live_handles() == {0, 0} end)
    end

    test "many short generations in parallel sessions over one model" do
      model = load!("e2b", n_ctx: 128)

      results =
        1..4
        |> Enum.map(fn _ ->
          Task.async(fn -> Gemma4.generate_text(session!(model), "The sea", max_tokens: 12) end)
        end)
        |> Enum.map(&Task.await(&1, 30_000))

      assert [{:ok, text, _} | _] = results
      assert Enum.all?(results, &match?({:ok, ^text, _}, &1))
    end
  end
end
