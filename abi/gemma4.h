// gemma4.h: the public C API of gemma4, a runtime for Google's Gemma 4 text models
// (E2B, E4B, 26B-A4B, 31B) loaded straight from Hugging Face checkpoint directories.
//
// Only opaque handles, scalars, strings and caller-owned buffers cross this boundary: no struct
// is ever passed, so bindings never mirror a layout. Every function returns a gemma4_status;
// gemma4_last_error() explains the last failure on the calling thread. The library never
// aborts, exits or prints (install a log callback to see progress messages).
//
// Typical use:
//
//     gemma4_model *model;
//     if (gemma4_load("path/to/gemma-4-E2B-it", GEMMA4_DEVICE_CPU, 0, 4096, 0, &model)) {
//         fprintf(stderr, "%s\n", gemma4_last_error());
//         return 1;
//     }
//     gemma4_session *chat;
//     gemma4_session_new(model, 0, &chat);
//     const char *roles[] = {"user"}, *contents[] = {"Why is the sky blue?"};
//     size_t n;
//     gemma4_chat_apply(model, roles, contents, 1, 1, NULL, 0, &n);   // size query
//     char *prompt = malloc(n + 1);
//     gemma4_chat_apply(model, roles, contents, 1, 1, prompt, n + 1, &n);
//     gemma4_generate(chat, prompt, 256, print_piece, NULL);           // streams pieces
//     gemma4_session_free(chat);
//     gemma4_model_free(model);
//
// Buffers: functions that produce text, tokens or logits take (buf, capacity, size_t *n_out).
// buf == NULL asks for the size: the call returns GEMMA4_OK with *n_out = the size needed.
// A buffer that is too small gives GEMMA4_ERR_BUFFER_TOO_SMALL with *n_out = the size needed.
// Text outputs are UTF-8 and NUL-terminated when capacity > *n_out (the NUL is not counted).
//
// Text inputs (tokenize's text, prompts, chat roles and contents, messages/tools JSON, stop
// strings) must be well-formed UTF-8, as any string from Python, C# or Elixir is: anything else
// (a stray byte, truncated or overlong sequence, UTF-16 surrogate) is GEMMA4_ERR_INVALID_ARGUMENT
// naming the argument and the byte offset, never silently replaced. Decoded output is valid
// UTF-8 too: bytes that form no character become U+FFFD, as Hugging Face's decode() does, and
// gemma4_token_piece returns a token's raw bytes (possibly part of a character).
//
// Threads: a gemma4_model is immutable after load and may be used by any number of threads and
// sessions at once. A gemma4_session must be used by one thread at a time, except
// gemma4_session_cancel, which any thread may call at any time while the session is alive.
// gemma4_last_error() is per thread.
//
// Re-entrancy: a session runs one call at a time. A call that runs or changes a session (step,
// kv_reset, truncate, generate, chat_generate, chat_complete, sample, force_tokens, the set_*,
// reset_sampling, stop and clear_cancel functions, _free) made
// while another call on the same session is still running, such as from that session's own
// token callback, returns GEMMA4_ERR_BUSY and changes nothing (gemma4_session_free then frees
// nothing: free the session after the running call returned). gemma4_session_info and
// gemma4_session_cancel may be called from the callback. Other sessions and models may be used
// from a callback freely. (Two threads using one session at once is still not allowed; the busy
// check usually catches it, but is no substitute for the caller's own locking.)
//
// Lifetimes: sessions hold a reference to their model, so gemma4_model_free may be called
// before the sessions are freed; the weights go when the last session is freed. The model
// handle itself is invalid from gemma4_model_free on (its sessions keep working). Every _free
// accepts NULL.
//
// Freed handles: each handle carries a tag that every function checks and that _free clears.
// Passing a freed handle, or a pointer that is no handle, gives GEMMA4_ERR_INVALID_ARGUMENT
// ("invalid or freed model handle" / "... session handle"); a _free given one does nothing but
// set that message. This is a best-effort check, not a guarantee: it can only read memory that
// is still allocated. The library keeps the handle structs of the last 8 freed models and the
// last 8 freed sessions allocated (a handle is a 16-byte struct of its own: weights, tokenizer
// and caches are released at once), so reuse of those is always caught; for a handle freed longer ago the memory may
// have been reused, and using it remains undefined behaviour (as does racing a _free with
// another call on the same handle). Bindings should still make double frees impossible.
#ifndef GEMMA4_H
#define GEMMA4_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(GEMMA4_BUILDING_LIBRARY)
#define GEMMA4_API __attribute__((visibility("default")))
#else
#define GEMMA4_API
#endif

// ---- Versions --------------------------------------------------------------------------------

#define GEMMA4_VERSION_MAJOR 0
#define GEMMA4_VERSION_MINOR 1
#define GEMMA4_VERSION_PATCH 0
#define GEMMA4_VERSION_STRING "0.1.0"
// The ABI major version: the shared library's soname is libgemma4.so.<GEMMA4_ABI_VERSION>.
#define GEMMA4_ABI_VERSION 0

// "0.1.0" of the loaded library (may differ from GEMMA4_VERSION_STRING of the header).
GEMMA4_API const char *gemma4_version(void);
// GEMMA4_ABI_VERSION of the loaded library; a binding compares it with its own.
GEMMA4_API int32_t gemma4_abi_version(void);

// ---- Status codes (fixed numbers, never reused; new codes are appended) ------------------------

typedef int32_t gemma4_status;
#define GEMMA4_OK 0
#define GEMMA4_ERR_INVALID_ARGUMENT 1 // NULL pointer, bad enum or range
#define GEMMA4_ERR_IO 2               // file or directory missing or unreadable
#define GEMMA4_ERR_FORMAT 3           // malformed checkpoint, tokenizer or tensor
#define GEMMA4_ERR_UNSUPPORTED 4      // valid input this build does not implement
#define GEMMA4_ERR_OUT_OF_MEMORY 5
#define GEMMA4_ERR_DEVICE 6           // CUDA failure, or no such device
#define GEMMA4_ERR_CONTEXT_FULL 7     // the tokens do not fit in the session's context
#define GEMMA4_ERR_BUFFER_TOO_SMALL 8 // *n_out holds the size needed
#define GEMMA4_ERR_INTERNAL 9
#define GEMMA4_ERR_INVALID_TOKEN 10   // token id outside [0, vocab size)
#define GEMMA4_ERR_CANCELLED 11       // generation stopped by gemma4_session_cancel
#define GEMMA4_ERR_CONFIG 12          // config.json value missing, out of range or inconsistent
#define GEMMA4_ERR_NO_TOKENIZER 13    // the model directory has no tokenizer.json
#define GEMMA4_ERR_BUSY 14            // the session is running another call (see "Re-entrancy")

// Message for the last failed call on this thread ("" if none). Valid until the next gemma4
// call on this thread. Never NULL.
GEMMA4_API const char *gemma4_last_error(void);
// "GEMMA4_ERR_IO" etc.; "GEMMA4_ERR_UNKNOWN" for other values. Static storage.
GEMMA4_API const char *gemma4_status_name(gemma4_status status);

// ---- Logging --------------------------------------------------------------------------------

#define GEMMA4_LOG_ERROR 0
#define GEMMA4_LOG_WARN 1
#define GEMMA4_LOG_INFO 2
#define GEMMA4_LOG_DEBUG 3
// Receives progress and warning messages (never errors: those are statuses). May be called from
// any thread that calls into gemma4. Without a callback the library prints nothing.
typedef void (*gemma4_log_fn)(int32_t level, const char *message, void *user_data);
// Installs (or with fn == NULL removes) the log callback; atomic with respect to other threads.
GEMMA4_API gemma4_status gemma4_set_log_callback(gemma4_log_fn fn, void *user_data);

// ---- Memory budget ----------------------------------------------------------------------------

// Sets a process-wide limit on what gemma4 may hold: the weights of loaded models and the KV
// caches of open sessions are counted against it before anything is allocated, and a
// gemma4_load or gemma4_session_new that would exceed it fails with GEMMA4_ERR_OUT_OF_MEMORY
// (nothing allocated). 0 (the default) means no limit. Lowering it below what is in use frees
// nothing; it only refuses new loads and sessions. Thread-safe.
GEMMA4_API gemma4_status gemma4_set_memory_budget(uint64_t bytes);

// ---- Models ---------------------------------------------------------------------------------

typedef struct gemma4_model gemma4_model;
typedef struct gemma4_session gemma4_session;

#define GEMMA4_DEVICE_CPU 0
#define GEMMA4_DEVICE_CUDA 1

// Loads a Hugging Face Gemma 4 checkpoint directory: config.json (Gemma4TextConfig, or a
// multimodal Gemma4Config whose text part is used), model.safetensors or sharded
// model-*.safetensors with model.safetensors.index.json, and tokenizer.json if present
// (without it, text functions return GEMMA4_ERR_NO_TOKENIZER); or a GGUF file: model_dir names
// a regular file ending in .gguf, architecture gemma4 or gemma3 (config from its metadata,
// weights F32, F16, BF16, Q4_0, Q5_0, Q8_0, Q4_K, Q5_K, Q6_K). Every tensor is checked before
// anything runs. device: GEMMA4_DEVICE_CPU or _CUDA; device_index: CUDA ordinal (0 on CPU).
// n_ctx: default context of new sessions (<= 0: min(8192, the model's maximum)).
// n_threads: CPU threads (<= 0: one per physical core this process may run on).
// Errors: INVALID_ARGUMENT (NULL dir/out, bad device), IO (a file missing or unreadable, or
// not a regular file, such as a directory or FIFO; the message names it), FORMAT, CONFIG,
// UNSUPPORTED, OUT_OF_MEMORY, DEVICE. On error *out is NULL and nothing is left allocated.
//
// The checkpoint files are memory-mapped (read-only, private): pages are read from disk when
// first used and the weights cost no heap. The files must therefore stay unchanged while the
// model is loaded: truncating or rewriting one in place (not replacing it by rename, which keeps
// the old file alive) makes the next step that touches a lost page die with SIGBUS, which no
// library can turn into a status. Use gemma4_load_ex with GEMMA4_LOAD_IN_MEMORY where the files
// may change under the process.
GEMMA4_API gemma4_status gemma4_load(const char *model_dir, int32_t device, int32_t device_index,
                                     int64_t n_ctx, int32_t n_threads, gemma4_model **out);

#define GEMMA4_LOAD_IN_MEMORY 1 // read the checkpoint files into memory instead of mapping them
// gemma4_load with flags (GEMMA4_LOAD_*; 0 = gemma4_load). GEMMA4_LOAD_IN_MEMORY reads every
// checkpoint file whole into memory during the load (vision/audio tensors of a multimodal
// checkpoint included), so the loaded model no longer depends on the files: they may be
// truncated, rewritten or deleted afterwards. Errors: those of gemma4_load, INVALID_ARGUMENT for
// unknown flags, OUT_OF_MEMORY when the files do not fit in memory.
GEMMA4_API gemma4_status gemma4_load_ex(const char *model_dir, int32_t device,
                                        int32_t device_index, int64_t n_ctx, int32_t n_threads,
                                        uint32_t flags, gemma4_model **out);
// Drops the caller's reference and invalidates the handle. Sessions keep the model alive until
// they are freed. NULL is fine; a freed or invalid handle is ignored (see "Freed handles").
GEMMA4_API void gemma4_model_free(gemma4_model *model);

#define GEMMA4_INFO_VOCAB_SIZE 0
#define GEMMA4_INFO_CONTEXT_LENGTH 1 // max_position_embeddings
#define GEMMA4_INFO_N_LAYERS 2
#define GEMMA4_INFO_BOS_ID 3
#define GEMMA4_INFO_EOS_ID 4         // first eos_token_id of config.json
#define GEMMA4_INFO_WEIGHT_BYTES 5   // bytes of all text-model tensors, in checkpoint dtype
#define GEMMA4_INFO_HIDDEN_SIZE 6
#define GEMMA4_INFO_N_CTX 7          // default context of new sessions
#define GEMMA4_INFO_END_OF_TURN_ID 8 // "<turn|>" id ("<end_of_turn>" for Gemma 3), or -1 without a tokenizer
#define GEMMA4_INFO_DEVICE 9
#define GEMMA4_INFO_N_THREADS 10     // CPU threads the model runs on
// One integer property of the model. Errors: INVALID_ARGUMENT (NULL, unknown key).
GEMMA4_API gemma4_status gemma4_model_info(const gemma4_model *model, int32_t key,
                                           int64_t *value /* out */);
// "e2b", "e4b", "26b-a4b", "31b" when the shapes match a released model, else "custom"; Gemma 3
// checkpoints: "gemma3-270m", "gemma3-1b", "gemma3-4b", "gemma3-12b", "gemma3-27b" or "gemma3-custom".
GEMMA4_API gemma4_status gemma4_model_variant(const gemma4_model *model, char *buf,
                                              size_t capacity, size_t *n_out /* out */);

// ---- Tokenizer and chat format -----------------------------------------------------------------

#define GEMMA4_TOKENIZE_ADD_BOS 1 // prepend <bos>, as Hugging Face add_special_tokens=True
// Encodes UTF-8 text exactly like the checkpoint's Hugging Face tokenizer. Special-token text
// such as "<|turn>" becomes its single token. flags: GEMMA4_TOKENIZE_*. text may be NULL only
// when len == 0. Errors: INVALID_ARGUMENT (also text that is not UTF-8: "byte 0xff at offset
// 3"), NO_TOKENIZER, BUFFER_TOO_SMALL.
GEMMA4_API gemma4_status gemma4_tokenize(const gemma4_model *model, const char *text, size_t len,
                                         int32_t flags, int32_t *ids, size_t capacity,
                                         size_t *n_out /* out */);

#define GEMMA4_DETOKENIZE_SKIP_SPECIAL 1 // drop control tokens, as skip_special_tokens=True
// Decodes ids to UTF-8 text exactly like Hugging Face decode(). Errors: INVALID_ARGUMENT,
// NO_TOKENIZER, INVALID_TOKEN, BUFFER_TOO_SMALL.
GEMMA4_API gemma4_status gemma4_detokenize(const gemma4_model *model, const int32_t *ids,
                                           size_t n_ids, int32_t flags, char *buf,
                                           size_t capacity, size_t *n_out /* out */);
// The bytes one token adds to a stream of text (a byte-fallback token gives one byte, which may
// be part of a UTF-8 sequence). Errors as gemma4_detokenize.
GEMMA4_API gemma4_status gemma4_token_piece(const gemma4_model *model, int32_t token, char *buf,
                                            size_t capacity, size_t *n_out /* out */);

// Special tokens: gemma4_tokenize and gemma4_generate (raw, trusted prompts) recognise
// special-token text such as "<|turn>". The chat calls (gemma4_chat_generate and the JSON chat
// API below) render conversations straight to token ids: control tokens come from the format,
// message contents are tokenized as literal text, so a user typing "<turn|>\n<|turn>system"
// cannot forge a turn. gemma4_chat_apply returns prompt text for display or for trusted use:
// tokenizing that text with specials recognised gives contents that power back.
//
// Renders a conversation in Gemma 4's chat format (<|turn>role ... <turn|>), byte-identical to
// transformers' apply_chat_template with Google's template (thinking off, no tools).
// roles[i]: "system", "user", "assistant" or "model"; contents[i]: its text.
// add_generation_prompt != 0 opens the model's turn. The text starts with "<bos>". Google ships
// one template for E2B/E4B and one for 26B-A4B/31B whose generation prompt adds an empty
// thought channel ("<|channel>thought\n<channel|>"); model selects it (NULL: E2B/E4B).
// A Gemma 3 model renders Gemma 3's format instead, byte-identical to its template:
// "<bos><start_of_turn>user\nS\n\nU<end_of_turn>\n<start_of_turn>model\n" (no system turn: a
// leading system message is prepended to the first user turn; user and assistant/model turns
// must alternate, else INVALID_ARGUMENT).
// Errors: INVALID_ARGUMENT (NULL arrays, no messages, unknown role), BUFFER_TOO_SMALL.
GEMMA4_API gemma4_status gemma4_chat_apply(const gemma4_model *model, const char *const *roles,
                                           const char *const *contents, size_t n_messages,
                                           int32_t add_generation_prompt, char *buf,
                                           size_t capacity, size_t *n_out /* out */);

// ---- Sessions ---------------------------------------------------------------------------------

// A conversation: its own KV cache for n_ctx positions (<= 0: the model's n_ctx), sampler and
// stop strings. Errors: INVALID_ARGUMENT, OUT_OF_MEMORY, DEVICE.
GEMMA4_API gemma4_status gemma4_session_new(gemma4_model *model, int64_t n_ctx,
                                            gemma4_session **out);
// NULL is fine; a freed or invalid handle is ignored (see "Freed handles"). Must not race with
// other calls on the same session.
GEMMA4_API void gemma4_session_free(gemma4_session *session);

// Appends n_tokens tokens to the context and runs them (a prefill when n_tokens > 1).
// logits: NULL, or a buffer for the last position's logits (capacity >= vocab size); *n_logits
// (may be NULL) gets the vocab size. The logits also become the sampler's input for
// gemma4_session_sample. Checks come first and leave the session unchanged: INVALID_ARGUMENT,
// INVALID_TOKEN (any id outside the vocabulary), CONTEXT_FULL (n_past + n_tokens > n_ctx),
// BUFFER_TOO_SMALL. Also CANCELLED (see gemma4_session_cancel) and DEVICE.
GEMMA4_API gemma4_status gemma4_session_step(gemma4_session *session, const int32_t *tokens,
                                             size_t n_tokens, float *logits, size_t capacity,
                                             size_t *n_logits /* out */);
// Empties the session's KV cache: the next step starts at position 0. Sampler settings, seed
// state and stop strings are kept.
GEMMA4_API gemma4_status gemma4_kv_reset(gemma4_session *session);
// Rewinds the context to its first n_keep tokens (0 <= n_keep <= n_past), e.g. to regenerate a
// reply. Afterwards the session behaves as if only those n_keep tokens had been run (equal up to
// floating-point summation order).
// Full-attention layers simply keep their first n_keep rows. Sliding-window layers keep only the
// last sliding_window positions in a ring, and recomputing an overwritten row would need the
// rows before it in turn, so: dropping 0 or 1 token is free; dropping more makes the session
// re-run its first n_keep tokens (it remembers them) before returning, which costs a prefill of
// n_keep tokens. Errors: INVALID_ARGUMENT (range), and those of gemma4_session_step.
GEMMA4_API gemma4_status gemma4_session_truncate(gemma4_session *session, int64_t n_keep);

#define GEMMA4_SESSION_N_PAST 0        // positions in the KV cache
#define GEMMA4_SESSION_N_CTX 1
#define GEMMA4_SESSION_KV_BYTES 2      // bytes of this session's KV cache
#define GEMMA4_SESSION_N_EVALUATED 3   // tokens run through the model since creation
#define GEMMA4_SESSION_LAST_PROMPT_TOKENS 4 // of the last gemma4_generate
#define GEMMA4_SESSION_LAST_GEN_TOKENS 5
#define GEMMA4_SESSION_LAST_PROMPT_US 6     // microseconds spent on the prompt
#define GEMMA4_SESSION_LAST_GEN_US 7        // microseconds spent generating
#define GEMMA4_SESSION_PRECISION 8          // GEMMA4_PRECISION_* set on the session
GEMMA4_API gemma4_status gemma4_session_info(const gemma4_session *session, int32_t key,
                                             int64_t *value /* out */);

// ---- Precision -------------------------------------------------------------------------------

// How the session's matrix products treat activations. Weights are always used as stored
// (GGUF block-quantized weights stay quantized in memory). Default: FP32 on the CPU, BF16 on
// CUDA (see "On CUDA" below).
// FP32 (the CPU's default): activations stay fp32 and accumulation is fp32, so logits match the
//   transformers float32 forward to ~1e-5 relative (summation order only); block-quantized
//   weights are dequantized block by block inside the products, so logits match an fp32 forward
//   on the dequantized weights the same way.
// BF16: llama.cpp's CPU numerics: each product's activations are first converted to the type
//   ggml's CPU backend pairs with the weight type (its vec_dot_type), with fp32 accumulation:
//   - bf16 weights (the attention projections, MLPs, per-layer-embedding projections and LM
//     head; not the MoE router and experts): activations rounded to bf16. On CPUs with
//     AVX512_BF16 prompts run ~1.7x faster (VDPBF16PS); decoding is memory-bound and about as
//     fast as in FP32. Logits then follow transformers' float32 forward with those inputs
//     rounded, and differ from FP32 by about 1e-2 relative (greedy tokens usually agree). Other
//     CPUs compute the same rounded products with fp32 instructions.
//   - block-quantized weights (Q4_0, Q5_0, Q8_0: Q8_0 activations, 8 bits per 32 values with an
//     fp16 scale; Q4_K, Q5_K, Q6_K: Q8_K activations, 8 bits per 256 values with an fp32 scale),
//     multiplied with integer dot products summed in ggml's fp32 order, and the model's other
//     operations as ggml's CPU backend computes them (its flash attention on an fp16 K/V cache,
//     RMSNorm, RoPE, fp16 GELU table): on Gemma 3 270M Q4_K_M every intermediate and logit equals
//     llama.cpp's (llama-cpp-python 0.3.36, native build) bit for bit, and greedy continuations
//     equal its own (tests/real/README.md; limits there: steps of 64+ tokens, CPUs without
//     AVX512-FP16, Q5_K). Steps of under 64 tokens run the integer products for every token;
//     longer ones (not bit-exact: llama.cpp then tiles its attention) the same 8-bit values on
//     fp32 tiles.
//     The MoE experts and router keep fp32 activations.
//   - F32 and F16 weights: unchanged (fp32 activations).
//   Models without block-quantized weights keep the fp32 K/V cache and attention.
// On CUDA (weights are bf16 on the device, see kernels/README.md): FP32 keeps every activation
//   exact in the matrix products (fp32 multiply-adds in the decode kernels, an exact bf16 hi +
//   lo split in the prompt GEMMs), the reference the GPU tests compare with. BF16 (the CUDA
//   default) rounds the products' inputs to bf16 (fp32 accumulation; norms, softmax and the
//   MoE router and experts stay fp32): on the test fixtures its logits follow transformers'
//   float32 forward with every Linear input rounded to bf16 to a median 2e-3 relative (worst
//   1.3e-2), the same bound the CPU's BF16 meets, and differ from FP32 by a few percent.
#define GEMMA4_PRECISION_FP32 0
#define GEMMA4_PRECISION_BF16 1
// Takes effect from the next step; the K/V cache is kept. Errors: INVALID_ARGUMENT (unknown
// precision).
GEMMA4_API gemma4_status gemma4_session_set_precision(gemma4_session *session,
                                                      int32_t precision);

// ---- Sampling ---------------------------------------------------------------------------------

// Greedy decoding (argmax; the default).
GEMMA4_API gemma4_status gemma4_session_set_greedy(gemma4_session *session);
// Sampling with temperature > 0; top_k <= 0, top_p >= 1 and min_p <= 0 disable those filters.
// Applied in Hugging Face order: repetition penalty, temperature, top-k, top-p, min-p.
// Errors: INVALID_ARGUMENT naming the parameter (temperature < 0, top_p outside (0, 1],
// min_p outside [0, 1]).
GEMMA4_API gemma4_status gemma4_session_set_sampling(gemma4_session *session, float temperature,
                                                     int32_t top_k, float top_p, float min_p);
// Hugging Face repetition penalty (> 0; 1 disables) over the last last_n context tokens
// (<= 0: the whole context).
GEMMA4_API gemma4_status gemma4_session_set_repetition_penalty(gemma4_session *session,
                                                               float penalty, int32_t last_n);
// Seeds the sampler's RNG: the same seed, settings and context give the same tokens.
GEMMA4_API gemma4_status gemma4_session_set_seed(gemma4_session *session, uint64_t seed);
// Samples the next token from the logits of the last step (does not append it). On the CUDA
// engine a greedy sampler (temperature 0, no repetition penalty) takes the argmax computed on
// the device when the step was run without a logits buffer; any other setting copies the logits
// back first and samples on the CPU, so the same seed gives the same tokens on both engines.
// Errors: INVALID_ARGUMENT (no step has produced logits yet), DEVICE (the copy failed).
GEMMA4_API gemma4_status gemma4_session_sample(gemma4_session *session,
                                               int32_t *token /* out */);

// ---- Generation -------------------------------------------------------------------------------

// Adds a stop string: generation ends when the generated text contains it (the stop string
// itself is not streamed). Up to 16 per session. Errors: INVALID_ARGUMENT.
GEMMA4_API gemma4_status gemma4_session_add_stop(gemma4_session *session, const char *stop);
GEMMA4_API gemma4_status gemma4_session_clear_stops(gemma4_session *session);

// Receives each generated piece of text (piece is not NUL-terminated; len may be 0 when a
// token only completes part of a UTF-8 sequence, which is held back until complete) and the
// token id (-1 for a final flush of text held back at the end). Return 0 to continue,
// non-zero to stop generation (gemma4_generate then returns GEMMA4_OK).
typedef int32_t (*gemma4_token_fn)(const char *piece, size_t len, int32_t token,
                                   void *user_data);

// Appends the prompt text to the session's context (tokenized with special-token text
// recognised; when the session is empty and the prompt does not start with <bos>, <bos> is
// prepended), runs it, then samples up to max_tokens tokens, streaming each to on_token (may
// be NULL). Stops at an end-of-sequence id, at "<turn|>" (end of the model's turn), at a stop
// string, at max_tokens, when on_token returns non-zero, or on gemma4_session_cancel
// (-> GEMMA4_ERR_CANCELLED). Generated tokens stay in the context, so the next call continues
// the conversation and only runs its new tokens. Errors: INVALID_ARGUMENT, NO_TOKENIZER,
// CONTEXT_FULL (prompt does not fit: nothing is run; if the context fills while generating,
// generation stops there with GEMMA4_OK), CANCELLED, DEVICE.
GEMMA4_API gemma4_status gemma4_generate(gemma4_session *session, const char *prompt,
                                         int32_t max_tokens, gemma4_token_fn on_token,
                                         void *user_data);
// Chat with cache reuse: renders the whole conversation (as gemma4_chat_apply with the
// generation prompt, but straight to token ids with contents as literal text, see "Special
// tokens" above), keeps the longest prefix of the session's context that equals it, runs
// only the rest, then generates as gemma4_generate. Pass the full message list on every turn,
// including the model's previous replies: when they are unchanged, only the new turns run.
// If an earlier message changed, the context is rewound (see gemma4_session_truncate).
// Errors: as gemma4_generate and gemma4_chat_apply.
GEMMA4_API gemma4_status gemma4_chat_generate(gemma4_session *session, const char *const *roles,
                                              const char *const *contents, size_t n_messages,
                                              int32_t max_tokens, gemma4_token_fn on_token,
                                              void *user_data);

// Asks the session to stop: safe from any thread (and from the token callback) while the session
// is alive. A cancel is never lost: every request is answered by exactly one
// GEMMA4_ERR_CANCELLED from the session's next check, where the checks are
//  - while gemma4_generate, gemma4_chat_generate, gemma4_chat_complete, gemma4_session_step or
//    gemma4_session_truncate runs: before each token and each micro-batch; the call then returns CANCELLED and the tokens
//    already run stay in the context (GEMMA4_SESSION_N_PAST tells how many);
//  - when one of those calls begins (after its argument checks): a request made while no call was
//    running, or one that arrived after a call's last check, makes the next such call return
//    CANCELLED at once, with the session unchanged.
// Requests made before one check are answered together by that check. So to stop a reply, call
// this while it runs; a request that races the end of a reply stops the next call instead (it
// says "cancelled before it ran"), unless the caller drops it with gemma4_session_clear_cancel.
GEMMA4_API gemma4_status gemma4_session_cancel(gemma4_session *session);
// Drops the cancel requests not answered yet, e.g. after cancelling a call that finished on its
// own, so that they do not stop the next call. Call it on the session's thread between calls
// (from the token callback: GEMMA4_ERR_BUSY). A request made after it returns still counts.
GEMMA4_API gemma4_status gemma4_session_clear_cancel(gemma4_session *session);

// ---- Chat with tools and thinking (JSON conversations) ---------------------------------------
//
// The whole Gemma 4 chat protocol in the library, so that no caller touches template text:
// conversations and tool declarations go in as JSON strings (OpenAI chat shapes), are rendered
// straight to token ids (contents as literal text, see "Special tokens"), the reply is parsed
// while it streams into answer text, reasoning and tool calls, and the parsed result is read as
// JSON afterwards. Rendering equals transformers' apply_chat_template(messages, tools=...,
// enable_thinking=...) with Google's templates (tests/test_chat_tools.c, 86 conversations).
//
// messages_json: a JSON array of messages:
//   {"role": "system" | "developer" | "user" | "assistant" | "model" | "tool",
//    "content": "text" | null | [{"type": "text", "text": "..."}],
//    "reasoning_content": "earlier thinking" (or "reasoning"; kept only where the template keeps
//        it: after the last user message, or with GEMMA4_CHAT_PRESERVE_THINKING on tool-call
//        turns; thinking inside assistant content is always stripped),
//    "tool_calls": [{"id": "call_0", "type": "function",
//                    "function": {"name": "f", "arguments": {...} or "{...JSON text...}"}}],
//    "tool_call_id": "call_0", "name": "f"}        (on "tool" messages: which call they answer)
//   A "tool" message's content may also be any JSON value (an object renders key by key).
// tools_json: NULL, "" or a JSON array of {"type": "function", "function": {"name",
//   "description", "parameters": JSON schema, "response": {...}}} (or the bare function object).
// Errors: INVALID_ARGUMENT naming the message and field (invalid JSON, unknown role, wrong type,
// empty conversation); UNSUPPORTED for image/audio/video parts (text-only runtime).
// A Gemma 3 model uses Gemma 3's format (see gemma4_chat_apply): there tools, tool calls and
// "tool" turns are UNSUPPORTED (its template has none), the thinking flags and reasoning are
// ignored (as its template does), roles must alternate (INVALID_ARGUMENT), and generation stops
// at "<end_of_turn>".

#define GEMMA4_CHAT_ADD_GENERATION_PROMPT 1 // render: open the model's turn (always on to generate)
#define GEMMA4_CHAT_THINKING 4              // enable_thinking: "<|think|>" in the system turn
#define GEMMA4_CHAT_PRESERVE_THINKING 8     // preserve_thinking (see reasoning_content above)

// The prompt text transformers would render (for display, logging, or trusted use). model
// selects the template (26B-A4B/31B add the empty thought channel to the generation prompt with
// thinking off); NULL: E2B/E4B. Errors: as above, INVALID_ARGUMENT (unknown flags),
// BUFFER_TOO_SMALL.
GEMMA4_API gemma4_status gemma4_chat_render_json(const gemma4_model *model,
                                                 const char *messages_json,
                                                 const char *tools_json, int32_t flags,
                                                 char *buf, size_t capacity,
                                                 size_t *n_out /* out */);
// The same conversation as the token ids a chat completion runs (contents literal).
// Errors: as gemma4_chat_render_json, NO_TOKENIZER.
GEMMA4_API gemma4_status gemma4_chat_tokenize_json(const gemma4_model *model,
                                                   const char *messages_json,
                                                   const char *tools_json, int32_t flags,
                                                   int32_t *ids, size_t capacity,
                                                   size_t *n_out /* out */);

#define GEMMA4_CHAT_EVENT_TEXT 0      // answer text (UTF-8, whole characters)
#define GEMMA4_CHAT_EVENT_REASONING 1 // thinking ("<|channel>thought" block, without markers)
#define GEMMA4_CHAT_EVENT_TOOL_CALL 2 // one parsed call: {"id":"call_0","name":"f","arguments":{...}}
// Receives each event's text (not NUL-terminated). Return 0 to continue, non-zero to stop
// (the completion then ends with finish reason "stop" and GEMMA4_OK).
typedef int32_t (*gemma4_chat_event_fn)(int32_t kind, const char *text, size_t len,
                                        void *user_data);

// Chat completion with cache reuse (as gemma4_chat_generate: pass the whole conversation every
// turn; the cached prefix is kept). flags: GEMMA4_CHAT_THINKING, GEMMA4_CHAT_PRESERVE_THINKING.
// Generation stops at the end of the model's turn, when the model hands over to the tools
// ("<|tool_response>" after its calls), at a stop string (gemma4_session_add_stop; it applies
// to the answer text), when on_event returns non-zero, at max_tokens, or on cancel.
// Tool calls: "<|tool_call>call:NAME{...}<tool_call|>" blocks become TOOL_CALL events. A call
// that does not parse, names a function that is not in tools_json (when tools were given), or
// is cut off by the end of generation is not dropped: its raw text comes as TEXT.
// Afterwards gemma4_chat_result gives the parsed reply and GEMMA4_SESSION_FINISH_REASON /
// _USAGE_* the finish reason and token counts (also after CANCELLED).
// Errors: as gemma4_chat_render_json, NO_TOKENIZER, CONTEXT_FULL (the conversation does not
// fit: nothing is run), CANCELLED, BUSY, DEVICE.
GEMMA4_API gemma4_status gemma4_chat_complete(gemma4_session *session, const char *messages_json,
                                              const char *tools_json, int32_t flags,
                                              int32_t max_tokens, gemma4_chat_event_fn on_event,
                                              void *user_data);
// The last completion as JSON: {"content": "...", "reasoning": "..." or null,
//   "tool_calls": [{"id", "name", "arguments": {...}}], "finish_reason": "stop" | "length" |
//   "tool_calls" | "cancelled", "usage": {"prompt_tokens" (the whole conversation),
//   "cached_tokens" (of those, reused from the cache), "completion_tokens", "total_tokens"}}.
// Errors: INVALID_ARGUMENT (no completion yet on this session), BUFFER_TOO_SMALL.
GEMMA4_API gemma4_status gemma4_chat_result(const gemma4_session *session, char *buf,
                                            size_t capacity, size_t *n_out /* out */);

// gemma4_session_info keys for the last generation (gemma4_generate, gemma4_chat_generate or
// gemma4_chat_complete).
#define GEMMA4_SESSION_FINISH_REASON 16           // GEMMA4_FINISH_*, -1 before any generation
#define GEMMA4_SESSION_USAGE_PROMPT_TOKENS 17     // last chat completion: conversation tokens
#define GEMMA4_SESSION_USAGE_CACHED_TOKENS 18     // ... of them reused from the cache
#define GEMMA4_SESSION_USAGE_COMPLETION_TOKENS 19 // ... generated
#define GEMMA4_FINISH_STOP 0       // end of turn or sequence, a stop string, the callback
#define GEMMA4_FINISH_LENGTH 1     // max_tokens, or the context filled
#define GEMMA4_FINISH_TOOL_CALLS 2 // the turn ended with tool calls (run them, then call again)
#define GEMMA4_FINISH_CANCELLED 3

// Sampling back to the defaults of the model directory's generation_config.json (do_sample,
// temperature, top_k, top_p; greedy without the file or without do_sample, as transformers).
// New sessions start there; gemma4_session_set_sampling / _set_greedy override them.
GEMMA4_API gemma4_status gemma4_session_reset_sampling(gemma4_session *session);
// The session's current sampling settings (what gemma4_session_set_sampling last set, or the
// defaults); temperature 0 is greedy. Any out pointer may be NULL.
GEMMA4_API gemma4_status gemma4_session_get_sampling(const gemma4_session *session,
                                                     float *temperature /* out */,
                                                     int32_t *top_k /* out */,
                                                     float *top_p /* out */,
                                                     float *min_p /* out */);

// Testing aid: the next generation on this session takes these tokens, in order, instead of
// sampling (each still runs through the model, so the cache and usage are real), then samples
// again. Lets binding tests drive tool calls and thinking through tiny test models.
// n == 0 clears. Errors: INVALID_ARGUMENT, INVALID_TOKEN (an id outside the vocabulary).
GEMMA4_API gemma4_status gemma4_session_force_tokens(gemma4_session *session,
                                                     const int32_t *tokens, size_t n);

#ifdef __cplusplus
}
#endif

#endif // GEMMA4_H
