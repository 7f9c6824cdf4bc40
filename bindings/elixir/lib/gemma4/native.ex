defmodule Gemma4.Native do
  # The NIF functions of c_src/gemma4_nif.c, one to one; use the Gemma4 module instead.
  @moduledoc false
  @on_load :load_nif

  def load_nif do
    path = Path.join(priv_dir(), "gemma4_nif")
    :erlang.load_nif(String.to_charlist(path), 0)
  end

  # The app's priv dir once Mix has built the app; the source tree's priv otherwise.
  defp priv_dir do
    source_priv = Path.expand("../../priv", __DIR__)

    case :code.priv_dir(:gemma4) do
      {:error, _} ->
        source_priv

      dir ->
        dir = List.to_string(dir)
        if File.exists?(Path.join(dir, "gemma4_nif.so")), do: dir, else: source_priv
    end
  end

  defp nif, do: :erlang.nif_error(:gemma4_nif_not_loaded)

  def version, do: nif()
  def live_handles, do: nif()
  def load(_path, _device, _device_index, _n_ctx, _n_threads, _flags), do: nif()
  def model_info(_model, _key), do: nif()
  def model_variant(_model), do: nif()
  def tokenize(_model, _text, _flags), do: nif()
  def detokenize(_model, _ids, _flags), do: nif()
  def token_piece(_model, _token), do: nif()
  def chat_apply(_model, _roles, _contents, _add_generation_prompt), do: nif()
  def session_new(_model, _n_ctx), do: nif()
  def step(_session, _tokens, _want_logits), do: nif()
  def sample(_session), do: nif()
  def kv_reset(_session), do: nif()
  def truncate(_session, _n_keep), do: nif()
  def session_info(_session, _key), do: nif()
  def set_precision(_session, _precision), do: nif()
  def set_greedy(_session), do: nif()
  def set_sampling(_session, _temperature, _top_k, _top_p, _min_p), do: nif()
  def set_repetition_penalty(_session, _penalty, _last_n), do: nif()
  def set_seed(_session, _seed), do: nif()
  def add_stop(_session, _stop), do: nif()
  def clear_stops(_session), do: nif()
  def cancel(_session), do: nif()
  def generate(_session, _prompt, _max_tokens, _pid, _ref), do: nif()
  def chat_generate(_session, _roles, _contents, _max_tokens, _pid, _ref), do: nif()
  def chat_complete(_session, _messages_json, _tools_json, _flags, _max_tokens, _pid, _ref), do: nif()
  def chat_render(_model, _messages_json, _tools_json, _flags), do: nif()
  def force_tokens(_session, _tokens), do: nif()
  def reset_sampling(_session), do: nif()
  def get_sampling(_session), do: nif()
end
