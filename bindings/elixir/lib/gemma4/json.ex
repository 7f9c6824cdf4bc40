defmodule Gemma4.JSON do
  @moduledoc """
  The small JSON codec the chat API needs (no Hex packages): encodes maps (atom or string
  keys), lists, binaries, numbers, booleans and nil; decodes into maps with string keys, lists,
  binaries, integers, floats, booleans and nil.
  """

  @spec encode!(term()) :: String.t()
  def encode!(value), do: IO.iodata_to_binary(enc(value))

  defp enc(nil), do: "null"
  defp enc(true), do: "true"
  defp enc(false), do: "false"
  defp enc(v) when is_atom(v), do: enc(Atom.to_string(v))
  defp enc(v) when is_integer(v), do: Integer.to_string(v)
  defp enc(v) when is_float(v), do: Float.to_string(v)

  defp enc(v) when is_binary(v) do
    unless String.valid?(v), do: raise(ArgumentError, "not valid UTF-8: #{inspect(v)}")
    [?", escape(v), ?"]
  end

  defp enc(v) when is_map(v) do
    pairs = Enum.map(v, fn {k, x} -> [enc(to_string(k)), ?:, enc(x)] end)
    [?{, Enum.intersperse(pairs, ?,), ?}]
  end

  defp enc(v) when is_list(v), do: [?[, Enum.intersperse(Enum.map(v, &enc/1), ?,), ?]]
  defp enc(v), do: raise(ArgumentError, "cannot encode #{inspect(v)} as JSON")

  defp escape(s) do
    for <<c::utf8 <- s>>, into: "" do
      case c do
        ?" -> "\\\""
        ?\\ -> "\\\\"
        ?\n -> "\\n"
        ?\r -> "\\r"
        ?\t -> "\\t"
        c when c < 0x20 -> "\\u" <> String.pad_leading(Integer.to_string(c, 16), 4, "0")
        c -> <<c::utf8>>
      end
    end
  end

  @spec decode!(String.t()) :: term()
  def decode!(text) when is_binary(text) do
    {v, rest} = value(skip(text))

    case skip(rest) do
      "" -> v
      _ -> raise ArgumentError, "JSON: text after the value"
    end
  end

  defp skip(<<c, rest::binary>>) when c in ' \t\r\n', do: skip(rest)
  defp skip(s), do: s

  defp value("null" <> r), do: {nil, r}
  defp value("true" <> r), do: {true, r}
  defp value("false" <> r), do: {false, r}
  defp value("\"" <> r), do: string(r, [])
  defp value("{" <> r), do: object(skip(r), %{})
  defp value("[" <> r), do: array(skip(r), [])
  defp value(s), do: number(s)

  defp object("}" <> r, acc), do: {acc, r}

  defp object("\"" <> r, acc) do
    {k, r} = string(r, [])
    ":" <> r = skip(r)
    {v, r} = value(skip(r))
    acc = Map.put(acc, k, v)

    case skip(r) do
      "," <> r -> object(skip(r), acc)
      "}" <> r -> {acc, r}
      _ -> raise ArgumentError, "JSON: expected ',' or '}'"
    end
  end

  defp object(_, _), do: raise(ArgumentError, "JSON: expected a key")

  defp array("]" <> r, acc), do: {Enum.reverse(acc), r}

  defp array(s, acc) do
    {v, r} = value(s)

    case skip(r) do
      "," <> r -> array(skip(r), [v | acc])
      "]" <> r -> {Enum.reverse([v | acc]), r}
      _ -> raise ArgumentError, "JSON: expected ',' or ']'"
    end
  end

  defp string("\"" <> r, acc), do: {IO.iodata_to_binary(Enum.reverse(acc)), r}

  defp string("\\u" <> <<h::binary-size(4), r::binary>>, acc) do
    cp = String.to_integer(h, 16)

    case {cp, r} do
      {hi, "\\u" <> <<l::binary-size(4), r2::binary>>} when hi in 0xD800..0xDBFF ->
        lo = String.to_integer(l, 16)
        string(r2, [<<(0x10000 + (hi - 0xD800) * 0x400 + (lo - 0xDC00))::utf8>> | acc])

      _ ->
        string(r, [<<cp::utf8>> | acc])
    end
  end

  defp string("\\" <> <<c, r::binary>>, acc) do
    ch =
      case c do
        ?n -> "\n"
        ?r -> "\r"
        ?t -> "\t"
        ?b -> "\b"
        ?f -> "\f"
        c -> <<c>>
      end

    string(r, [ch | acc])
  end

  defp string(<<c, r::binary>>, acc), do: string(r, [<<c>> | acc])
  defp string("", _), do: raise(ArgumentError, "JSON: unterminated string")

  defp number(s) do
    case Regex.run(~r/^-?\d+(\.\d+)?([eE][-+]?\d+)?/, s) do
      [num | _] ->
        rest = binary_part(s, byte_size(num), byte_size(s) - byte_size(num))

        v =
          if String.contains?(num, [".", "e", "E"]) do
            {f, ""} = Float.parse(if String.contains?(num, "."), do: num, else: fix_exp(num))
            f
          else
            String.to_integer(num)
          end

        {v, rest}

      nil ->
        raise ArgumentError, "JSON: unexpected #{inspect(String.slice(s, 0, 10))}"
    end
  end

  # Float.parse wants a fraction before an exponent ("1e5" -> "1.0e5").
  defp fix_exp(num), do: String.replace(num, ~r/[eE]/, ".0e", global: false)
end
