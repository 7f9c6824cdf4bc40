#!/usr/bin/env bash
# Builds the libFuzzer targets in tests/fuzz/ into build-fuzz/ (clang, ASan + UBSan) and runs each
# for SECONDS_PER_TARGET seconds (default 60) on one worker, printing the executions per target.
#   scripts/fuzz.sh [SECONDS_PER_TARGET] [TARGET...]     e.g. scripts/fuzz.sh 30 fuzz_chat
# Env: CC (default: clang, else clang-14), FUZZ_RSS_MB (default 2048), FUZZ_BUILD (build dir),
#      FUZZ_MAX_LEN (input size limit for every target; default per target, see max_len below).
# Crashes land in build-fuzz/artifacts/<target>/; add each one to tests/fuzz/corpus/<target>/
# once fixed. The corpus directories are only read: new coverage goes to build-fuzz/corpus/.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
secs=${1:-60}
shift || true
out=${FUZZ_BUILD:-$root/build-fuzz}
CC=${CC:-$(command -v clang || command -v clang-14 || true)}
[ -n "$CC" ] || { echo "fuzz.sh: clang not found (apt-get install clang)" >&2; exit 1; }

cjson_cflags=$(pkg-config --cflags libcjson)
cjson_libs=$(pkg-config --libs libcjson)
flags=(-std=gnu11 -g -O1 -fno-omit-frame-pointer -fsanitize=fuzzer,address,undefined
       -fno-sanitize-recover=undefined -Wall -Wextra -I"$root/core" -I"$root/core/formats" -I"$root/core/text" $cjson_cflags
       -DG4_SOURCE_DIR="\"$root\"")

# core files each target links (parsers plus status/mem/log/dtype/file)
base="status.c mem.c log.c dtype.c formats/file.c"
# the chat renderer and what it needs (config.c includes chat.h for the generation prompt)
chat="text/chat.c text/chat_emit.c text/tool_call.c text/tool_decl.c text/pyjson.c text/utf8.c text/tokenizer.c text/bpe.c"
declare -A srcs=(
  [fuzz_safetensors]="formats/safetensors.c"
  [fuzz_gguf]="formats/gguf.c formats/gguf_config.c formats/gguf_weights.c formats/config.c formats/weights.c formats/safetensors.c $chat"
  [fuzz_config]="formats/config.c $chat"
  [fuzz_tokenizer_load]="text/tokenizer.c text/bpe.c"
  [fuzz_tokenizer]="text/tokenizer.c text/bpe.c"
  [fuzz_chat]="$chat"
)
# -max_len per target: whole files for the parsers (the tokenizer.json seeds are ~14 KB); 4 KB of
# text or 1023 ids for fuzz_tokenizer, whose added tokens and merges span a few bytes, so longer
# inputs only make each run slower (its cost grows with the input, ~10 encode/decode passes).
declare -A max_len=(
  [fuzz_safetensors]=65536
  [fuzz_gguf]=65536
  [fuzz_config]=65536
  [fuzz_tokenizer_load]=65536
  [fuzz_tokenizer]=4096
  [fuzz_chat]=65536
)
targets=("$@")
[ ${#targets[@]} -gt 0 ] || targets=(fuzz_safetensors fuzz_gguf fuzz_config fuzz_tokenizer_load fuzz_tokenizer fuzz_chat)

mkdir -p "$out"
for t in "${targets[@]}"; do
  files=("$root/tests/fuzz/$t.c")
  for f in $base ${srcs[$t]}; do files+=("$root/core/$f"); done
  echo "== build $t"
  "$CC" "${flags[@]}" "${files[@]}" $cjson_libs -lm -lpthread -o "$out/$t"
done

[ "$secs" -gt 0 ] || exit 0
summary=()
status=0
for t in "${targets[@]}"; do
  mkdir -p "$out/corpus/$t" "$out/artifacts/$t"
  echo "== run $t for ${secs}s"
  log="$out/$t.log"
  set +e
  ASAN_OPTIONS=detect_leaks=1 UBSAN_OPTIONS=print_stacktrace=1 \
    "$out/$t" -max_total_time="$secs" -print_final_stats=1 -rss_limit_mb="${FUZZ_RSS_MB:-2048}" \
      -timeout=10 -max_len="${FUZZ_MAX_LEN:-${max_len[$t]}}" -artifact_prefix="$out/artifacts/$t/" \
      "$out/corpus/$t" "$root/tests/fuzz/corpus/$t" >"$log" 2>&1
  rc=$?
  set -e
  execs=$(grep -o 'stat::number_of_executed_units: *[0-9]*' "$log" | grep -o '[0-9]*$' || echo "?")
  cov=$(grep -o 'cov: [0-9]*' "$log" | tail -1 || true)
  tail -n 12 "$log" | grep -v '^stat::' || true
  summary+=("$(printf '%-22s rc=%-3s execs=%-12s %s' "$t" "$rc" "$execs" "$cov")")
  [ $rc -eq 0 ] || status=1
done
echo "== summary (${secs}s per target)"
printf '%s\n' "${summary[@]}"
exit $status
