# Mix project of the Elixir binding. No Hex packages: the NIF (c_src/gemma4_nif.c) is built by
# the :gemma4_nif compiler below, which runs `cc` against libgemma4.so.
#
#   GEMMA4_LIBDIR   directory with libgemma4.so (default ../../build, the CMake build dir)
#   GEMMA4_INCLUDE  directory with gemma4.h     (default ../../abi)
#   CC              C compiler                  (default cc)
#   GEMMA4_NIF_CFLAGS  extra compiler flags, e.g. "-g -fsanitize=address"
defmodule Gemma4.MixProject do
  use Mix.Project

  def project do
    [
      app: :gemma4,
      version: "0.1.0",
      elixir: "~> 1.14",
      compilers: [:gemma4_nif] ++ Mix.compilers(),
      deps: [],
      start_permanent: false
    ]
  end

  def application, do: [extra_applications: []]
end

defmodule Mix.Tasks.Compile.Gemma4Nif do
  @moduledoc "Builds priv/gemma4_nif.so from c_src/gemma4_nif.c with the system C compiler."
  use Mix.Task.Compiler

  @source "c_src/gemma4_nif.c"
  @target "priv/gemma4_nif.so"

  @impl true
  def run(_args) do
    root = Path.expand("../..", __DIR__)
    libdir = Path.expand(System.get_env("GEMMA4_LIBDIR") || Path.join(root, "build"))
    include = Path.expand(System.get_env("GEMMA4_INCLUDE") || Path.join(root, "abi"))

    erts_include =
      Path.join([:code.root_dir(), "erts-#{:erlang.system_info(:version)}", "include"])

    lib = Path.join(libdir, "libgemma4.so")
    header = Path.join(include, "gemma4.h")
    extra = OptionParser.split(System.get_env("GEMMA4_NIF_CFLAGS") || "")
    stamp = "priv/.gemma4_nif.libdir"

    cond do
      not File.exists?(lib) ->
        Mix.raise("libgemma4.so not found in #{libdir}; build the library or set GEMMA4_LIBDIR")

      not File.exists?(header) ->
        Mix.raise("gemma4.h not found in #{include}; set GEMMA4_INCLUDE")

      not File.exists?(Path.join(erts_include, "erl_nif.h")) ->
        Mix.raise("erl_nif.h not found in #{erts_include}; install erlang-dev")

      Mix.Utils.stale?([@source, header, lib, __ENV__.file], [@target]) or
          File.read(stamp) != {:ok, inspect({libdir, extra})} ->
        File.mkdir_p!("priv")
        cc = System.get_env("CC") || "cc"

        args =
          ~w(-std=c11 -O2 -fPIC -shared -Wall -Wextra -Werror) ++
            extra ++
            ["-I#{erts_include}", "-I#{include}", @source, "-o", @target] ++
            ["-L#{libdir}", "-lgemma4", "-Wl,-rpath,#{libdir}", "-lpthread"]

        Mix.shell().info("cc #{@source} -> #{@target} (libgemma4 from #{libdir})")

        case System.cmd(cc, args, stderr_to_stdout: true) do
          {_, 0} ->
            File.write!(stamp, inspect({libdir, extra}))
            # priv/ may be new: link it into _build so :code.priv_dir/1 finds the NIF
            Mix.Project.build_structure()
            {:ok, []}

          {out, status} ->
            Mix.shell().error(out)
            Mix.raise("#{cc} exited with #{status}")
        end

      true ->
        {:noop, []}
    end
  end

  @impl true
  def clean, do: File.rm_rf("priv")
end
