// gemma4_nif.c: the Erlang NIF behind the Elixir module Gemma4 (lib/gemma4.ex). It is a thin
// layer over abi/gemma4.h and contains no model logic.
//
// - Models and sessions are NIF resources; their destructors call gemma4_model_free and
//   gemma4_session_free. A session resource keeps its model resource (enif_keep_resource), so the
//   garbage collector may drop the model term first.
// - Load runs on a dirty I/O scheduler (mostly file mapping, and it must not crowd out the
//   dirty CPU pool); step, sample, truncate, (de)tokenize and session_new on dirty CPU schedulers.
// - gemma4_generate / gemma4_chat_generate run on a detached worker thread per call that streams
//   {:gemma4_token, ref, text} to the receiver and ends with {:gemma4_done, ref, stats} or
//   {:gemma4_error, ref, {code, message}}; no scheduler waits for a token.
// - A session is used by one thread at a time (abi/gemma4.h): every call on a session takes its
//   `busy` flag and a busy session answers {:error, {:busy, message}} instead of waiting.
// - Status errors come back as {:error, {code_atom, message}}; a wrong argument type is badarg.
#include <erl_nif.h>

#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "gemma4.h"

struct model_res {
    gemma4_model *model;
};

struct session_res {
    gemma4_session *session;
    struct model_res *model; // kept with enif_keep_resource, released by the destructor
    int64_t n_vocab;
    atomic_int busy;   // 1 while a call or a generation thread owns the session
    atomic_int cancel; // set by cancel_nif; cleared when the next call takes the session
};

static ErlNifResourceType *model_type, *session_type;
static atomic_long n_live_models, n_live_sessions; // for tests of the destructors

static ERL_NIF_TERM atom_ok, atom_error, atom_nil, atom_true, atom_false, atom_busy, atom_token,
    atom_done, atom_gen_error, atom_prompt_tokens, atom_gen_tokens, atom_prompt_us, atom_gen_us,
    atom_n_past, atom_n_evaluated;

// Index = gemma4_status; names are the status names without GEMMA4_ERR_, lower case.
static const char *const code_names[] = {
    "ok",       "invalid_argument", "io",
    "format",   "unsupported",      "out_of_memory",
    "device",   "context_full",     "buffer_too_small",
    "internal", "invalid_token",    "cancelled",
    "config",   "no_tokenizer",     "busy",
};
static ERL_NIF_TERM code_atoms[sizeof code_names / sizeof code_names[0]];

static ERL_NIF_TERM make_code(ErlNifEnv *env, gemma4_status st) {
    if (st >= 0 && (size_t)st < sizeof code_atoms / sizeof code_atoms[0]) return code_atoms[st];
    return enif_make_int(env, st);
}

static ERL_NIF_TERM make_text(ErlNifEnv *env, const char *text, size_t len) {
    ERL_NIF_TERM t;
    unsigned char *p = enif_make_new_binary(env, len, &t);
    if (len) memcpy(p, text, len);
    return t;
}

// {code, message}
static ERL_NIF_TERM make_reason(ErlNifEnv *env, ERL_NIF_TERM code, const char *message) {
    return enif_make_tuple2(env, code, make_text(env, message, strlen(message)));
}

static ERL_NIF_TERM error_msg(ErlNifEnv *env, ERL_NIF_TERM code, const char *message) {
    return enif_make_tuple2(env, atom_error, make_reason(env, code, message));
}

// {:error, {code, gemma4_last_error()}}; call right after the failed gemma4 call.
static ERL_NIF_TERM status_error(ErlNifEnv *env, gemma4_status st) {
    return error_msg(env, make_code(env, st), gemma4_last_error());
}

static ERL_NIF_TERM busy_error(ErlNifEnv *env) {
    return error_msg(env, atom_busy, "session is busy (a step or generation is running on it)");
}

// ---- Resources ------------------------------------------------------------------------------

static void model_dtor(ErlNifEnv *env, void *obj) {
    (void)env;
    struct model_res *m = obj;
    gemma4_model_free(m->model);
    m->model = NULL;
    atomic_fetch_sub(&n_live_models, 1);
}

static void session_dtor(ErlNifEnv *env, void *obj) {
    (void)env;
    struct session_res *s = obj;
    gemma4_session_free(s->session);
    s->session = NULL;
    if (s->model) enif_release_resource(s->model);
    s->model = NULL;
    atomic_fetch_sub(&n_live_sessions, 1);
}

static int get_model(ErlNifEnv *env, ERL_NIF_TERM t, struct model_res **out) {
    return enif_get_resource(env, t, model_type, (void **)out) && (*out)->model;
}

static int get_session(ErlNifEnv *env, ERL_NIF_TERM t, struct session_res **out) {
    return enif_get_resource(env, t, session_type, (void **)out) && (*out)->session;
}

// Takes the session for this thread; 0 if another call or generation holds it.
static int acquire(struct session_res *s) {
    int expected = 0;
    if (!atomic_compare_exchange_strong(&s->busy, &expected, 1)) return 0;
    atomic_store(&s->cancel, 0);
    // cancel_nif only cancels a running call; a request that call did not answer (it finished
    // first) must not stop this one (the C library keeps requests until answered).
    gemma4_session_clear_cancel(s->session);
    return 1;
}

static void release(struct session_res *s) { atomic_store(&s->busy, 0); }

// ---- Argument helpers -----------------------------------------------------------------------

// A binary or iodata as a malloc'd NUL-terminated string. Returns NULL on a wrong type (badarg);
// *has_nul tells about an embedded NUL, which the C API cannot carry.
static char *get_cstring(ErlNifEnv *env, ERL_NIF_TERM t, int *has_nul) {
    ErlNifBinary bin;
    if (!enif_inspect_iolist_as_binary(env, t, &bin)) return NULL;
    char *s = malloc(bin.size + 1);
    if (!s) return NULL;
    memcpy(s, bin.data, bin.size);
    s[bin.size] = '\0';
    *has_nul = memchr(bin.data, 0, bin.size) != NULL;
    return s;
}

static void free_strings(char **v, size_t n) {
    if (!v) return;
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

// A list of binaries as malloc'd strings. 0 on a wrong type; *has_nul as get_cstring.
static int get_string_list(ErlNifEnv *env, ERL_NIF_TERM list, char ***out, size_t *n_out,
                           int *has_nul) {
    unsigned n;
    if (!enif_get_list_length(env, list, &n)) return 0;
    char **v = calloc(n ? n : 1, sizeof *v);
    if (!v) return 0;
    ERL_NIF_TERM head, tail = list;
    *has_nul = 0;
    for (unsigned i = 0; i < n; i++) {
        int nul = 0;
        enif_get_list_cell(env, tail, &head, &tail);
        if (!(v[i] = get_cstring(env, head, &nul))) {
            free_strings(v, i);
            return 0;
        }
        *has_nul |= nul;
    }
    *out = v;
    *n_out = n;
    return 1;
}

// A list of integers as int32 tokens. Returns 0 on a wrong type; *out_of_range is set for an
// integer that does not fit int32 (reported as an invalid token, as the library would).
static int get_tokens(ErlNifEnv *env, ERL_NIF_TERM list, int32_t **out, size_t *n_out,
                      int *out_of_range) {
    unsigned n;
    if (!enif_get_list_length(env, list, &n)) return 0;
    int32_t *v = malloc((n ? n : 1) * sizeof *v);
    if (!v) return 0;
    ERL_NIF_TERM head, tail = list;
    *out_of_range = 0;
    for (unsigned i = 0; i < n; i++) {
        enif_get_list_cell(env, tail, &head, &tail);
        ErlNifSInt64 x;
        if (enif_term_type(env, head) != ERL_NIF_TERM_TYPE_INTEGER) {
            free(v);
            return 0;
        }
        if (!enif_get_int64(env, head, &x) || x < INT32_MIN || x > INT32_MAX) {
            *out_of_range = 1; // a bignum or beyond int32
            x = -1;
        }
        v[i] = (int32_t)x;
    }
    *out = v;
    *n_out = n;
    return 1;
}

// Runs a (buf, capacity, *n_out) text function twice, size query then fill, and answers
// {:ok, binary} or {:error, {code, message}}.
typedef gemma4_status (*text_fn)(const void *args, char *buf, size_t capacity, size_t *n_out);

static ERL_NIF_TERM text_result(ErlNifEnv *env, text_fn fn, const void *args) {
    size_t n = 0;
    gemma4_status st = fn(args, NULL, 0, &n);
    if (st != GEMMA4_OK) return status_error(env, st);
    ErlNifBinary bin;
    if (!enif_alloc_binary(n + 1, &bin))
        return error_msg(env, code_atoms[GEMMA4_ERR_OUT_OF_MEMORY], "text buffer");
    if ((st = fn(args, (char *)bin.data, n + 1, &n)) != GEMMA4_OK) {
        ERL_NIF_TERM e = status_error(env, st);
        enif_release_binary(&bin);
        return e;
    }
    enif_realloc_binary(&bin, n); // drop the NUL
    return enif_make_tuple2(env, atom_ok, enif_make_binary(env, &bin));
}

// ---- Library and model ----------------------------------------------------------------------

static ERL_NIF_TERM version_nif(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
    (void)argc;
    (void)argv;
    const char *v = gemma4_version();
    return enif_make_tuple2(env, make_text(env, v, strlen(v)),
                            enif_make_int(env, gemma4_abi_version()));
}

static ERL_NIF_TERM live_handles_nif(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
    (void)argc;
    (void)argv;
    return enif_make_tuple2(env, enif_make_long(env, atomic_load(&n_live_models)),
                            enif_make_long(env, atomic_load(&n_live_sessions)));
}

// load(path, device, device_index, n_ctx, n_threads, flags) on a dirty I/O scheduler
static ERL_NIF_TERM load_nif(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
    (void)argc;
    int device, device_index, n_threads, has_nul = 0;
    unsigned flags;
    ErlNifSInt64 n_ctx;
    if (!enif_get_int(env, argv[1], &device) || !enif_get_int(env, argv[2], &device_index) ||
        !enif_get_int64(env, argv[3], &n_ctx) || !enif_get_int(env, argv[4], &n_threads) ||
        !enif_get_uint(env, argv[5], &flags))
        return enif_make_badarg(env);
    char *path = get_cstring(env, argv[0], &has_nul);
    if (!path) return enif_make_badarg(env);
    if (has_nul) {
        free(path);
        return error_msg(env, code_atoms[GEMMA4_ERR_INVALID_ARGUMENT], "path contains a NUL byte");
    }
    gemma4_model *model = NULL;
    gemma4_status st = gemma4_load_ex(path, device, device_index, n_ctx, n_threads, flags, &model);
    free(path);
    if (st != GEMMA4_OK) return status_error(env, st);
    struct model_res *m = enif_alloc_resource(model_type, sizeof *m);
    if (!m) {
        gemma4_model_free(model);
        return error_msg(env, code_atoms[GEMMA4_ERR_OUT_OF_MEMORY], "model resource");
    }
    m->model = model;
    atomic_fetch_add(&n_live_models, 1);
    ERL_NIF_TERM t = enif_make_resource(env, m);
    enif_release_resource(m); // the term owns it now
    return enif_make_tuple2(env, atom_ok, t);
}

static ERL_NIF_TERM model_info_nif(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
    (void)argc;
    struct model_res *m;
    int key;
    if (!get_model(env, argv[0], &m) || !enif_get_int(env, argv[1], &key))
        return enif_make_badarg(env);
    int64_t v;
    gemma4_status st = gemma4_model_info(m->model, key, &v);
    if (st != GEMMA4_OK) return status_error(env, st);
    return enif_make_tuple2(env, atom_ok, enif_make_int64(env, v));
}

struct variant_args {
    const gemma4_model *model;
};
static gemma4_status variant_fn(const void *p, char *buf, size_t capacity, size_t *n_out) {
    const struct variant_args *a = p;
    return gemma4_model_variant(a->model, buf, capacity, n_out);
}

static ERL_NIF_TERM model_variant_nif(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
    (void)argc;
    struct model_res *m;
    if (!get_model(env, argv[0], &m)) return enif_make_badarg(env);
    struct variant_args a = {m->model};
    return text_result(env, variant_fn, &a);
}

// tokenize(model, text, flags) -> {:ok, [id]}
static ERL_NIF_TERM tokenize_nif(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
    (void)argc;
    struct model_res *m;
    ErlNifBinary text;
    int flags;
    if (!get_model(env, argv[0], &m) || !enif_inspect_iolist_as_binary(env, argv[1], &text) ||
        !enif_get_int(env, argv[2], &flags))
        return enif_make_badarg(env);
    size_t n = 0;
    gemma4_status st =
        gemma4_tokenize(m->model, (const char *)text.data, text.size, flags, NULL, 0, &n);
    if (st != GEMMA4_OK) return status_error(env, st);
    int32_t *ids = malloc((n ? n : 1) * sizeof *ids);
    if (!ids) return error_msg(env, code_atoms[GEMMA4_ERR_OUT_OF_MEMORY], "token buffer");
    st = gemma4_tokenize(m->model, (const char *)text.data, text.size, flags, ids, n, &n);
    if (st != GEMMA4_OK) {
        free(ids);
        return status_error(env, st);
    }
    ERL_NIF_TERM list = enif_make_list(env, 0);
    for (size_t i = n; i-- > 0;)
        list = enif_make_list_cell(env, enif_make_int(env, ids[i]), list);
    free(ids);
    return enif_make_tuple2(env, atom_ok, list);
}

struct detokenize_args {
    const gemma4_model *model;
    const int32_t *ids;
    size_t n_ids;
    int32_t flags;
};
static gemma4_status detokenize_fn(const void *p, char *buf, size_t capacity, size_t *n_out) {
    const struct detokenize_args *a = p;
    return gemma4_detokenize(a->model, a->ids, a->n_ids, a->flags, buf, capacity, n_out);
}

// detokenize(model, ids, flags) -> {:ok, text}
static ERL_NIF_TERM detokenize_nif(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
    (void)argc;
    struct model_res *m;
    int32_t *ids;
    size_t n_ids;
    int flags, bad_range;
    if (!get_model(env, argv[0], &m) || !enif_get_int(env, argv[2], &flags) ||
        !get_tokens(env, argv[1], &ids, &n_ids, &bad_range))
        return enif_make_badarg(env);
    ERL_NIF_TERM r;
    if (bad_range) {
        r = error_msg(env, code_atoms[GEMMA4_ERR_INVALID_TOKEN], "token id outside int32");
    } else {
        struct detokenize_args a = {m->model, ids, n_ids, flags};
        r = text_result(env, detokenize_fn, &a);
    }
    free(ids);
    return r;
}

struct piece_args {
    const gemma4_model *model;
    int32_t token;
};
static gemma4_status piece_fn(const void *p, char *buf, size_t capacity, size_t *n_out) {
    const struct piece_args *a = p;
    return gemma4_token_piece(a->model, a->token, buf, capacity, n_out);
}

static ERL_NIF_TERM token_piece_nif(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
    (void)argc;
    struct model_res *m;
    ErlNifSInt64 tok;
    if (!get_model(env, argv[0], &m) || enif_term_type(env, argv[1]) != ERL_NIF_TERM_TYPE_INTEGER)
        return enif_make_badarg(env);
    if (!enif_get_int64(env, argv[1], &tok) || tok < INT32_MIN || tok > INT32_MAX)
        return error_msg(env, code_atoms[GEMMA4_ERR_INVALID_TOKEN], "token id outside int32");
    struct piece_args a = {m->model, (int32_t)tok};
    return text_result(env, piece_fn, &a);
}

struct chat_args {
    const gemma4_model *model;
    const char *const *roles, *const *contents;
    size_t n_messages;
    int32_t add_generation_prompt;
};
static gemma4_status chat_fn(const void *p, char *buf, size_t capacity, size_t *n_out) {
    const struct chat_args *a = p;
    return gemma4_chat_apply(a->model, a->roles, a->contents, a->n_messages,
                             a->add_generation_prompt, buf, capacity, n_out);
}

// chat_apply(model | nil, roles, contents, add_generation_prompt) -> {:ok, text}
static ERL_NIF_TERM chat_apply_nif(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
    (void)argc;
    struct model_res *m = NULL;
    if (enif_compare(argv[0], atom_nil) != 0 && !get_model(env, argv[0], &m))
        return enif_make_badarg(env);
    char **roles = NULL, **contents = NULL;
    size_t n_roles = 0, n_contents = 0;
    int nul1 = 0, nul2 = 0, add_gen;
    if (!enif_get_int(env, argv[3], &add_gen) ||
        !get_string_list(env, argv[1], &roles, &n_roles, &nul1))
        return enif_make_badarg(env);
    if (!get_string_list(env, argv[2], &contents, &n_contents, &nul2) || n_roles != n_contents) {
        free_strings(roles, n_roles);
        free_strings(contents, n_contents);
        return enif_make_badarg(env);
    }
    ERL_NIF_TERM r;
    if (nul1 || nul2) {
        r = error_msg(env, code_atoms[GEMMA4_ERR_INVALID_ARGUMENT],
                      "a message contains a NUL byte");
    } else {
        struct chat_args a = {m ? m->model : NULL, (const char *const *)roles,
                              (const char *const *)contents, n_roles, add_gen};
        r = text_result(env, chat_fn, &a);
    }
    free_strings(roles, n_roles);
    free_strings(contents, n_contents);
    return r;
}

// ---- Sessions -------------------------------------------------------------------------------

// session_new(model, n_ctx) -> {:ok, session}
static ERL_NIF_TERM session_new_nif(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
    (void)argc;
    struct model_res *m;
    ErlNifSInt64 n_ctx;
    if (!get_model(env, argv[0], &m) || !enif_get_int64(env, argv[1], &n_ctx))
        return enif_make_badarg(env);
    int64_t n_vocab = 0;
    gemma4_status st = gemma4_model_info(m->model, GEMMA4_INFO_VOCAB_SIZE, &n_vocab);
    if (st != GEMMA4_OK) return status_error(env, st);
    gemma4_session *session = NULL;
    if ((st = gemma4_session_new(m->model, n_ctx, &session)) != GEMMA4_OK)
        return status_error(env, st);
    struct session_res *s = enif_alloc_resource(session_type, sizeof *s);
    if (!s) {
        gemma4_session_free(session);
        return error_msg(env, code_atoms[GEMMA4_ERR_OUT_OF_MEMORY], "session resource");
    }
    s->session = session;
    s->model = m;
    enif_keep_resource(m); // released by session_dtor
    s->n_vocab = n_vocab;
    atomic_init(&s->busy, 0);
    atomic_init(&s->cancel, 0);
    atomic_fetch_add(&n_live_sessions, 1);
    ERL_NIF_TERM t = enif_make_resource(env, s);
    enif_release_resource(s);
    return enif_make_tuple2(env, atom_ok, t);
}

// One gemma4_session_step; with want_logits the last position's logits come back as a binary
// of n_vocab native-endian f32 (Nx.from_binary(bin, :f32)).
static ERL_NIF_TERM run_step(ErlNifEnv *env, struct session_res *s, const int32_t *tokens,
                             size_t n_tokens, int want_logits) {
    gemma4_status st;
    if (!want_logits) {
        st = gemma4_session_step(s->session, tokens, n_tokens, NULL, 0, NULL);
        return st == GEMMA4_OK ? atom_ok : status_error(env, st);
    }
    size_t n_bytes = (size_t)s->n_vocab * sizeof(float), n_logits = 0;
    ErlNifBinary bin;
    if (!enif_alloc_binary(n_bytes, &bin))
        return error_msg(env, code_atoms[GEMMA4_ERR_OUT_OF_MEMORY], "logits buffer");
    // Binary data is word-aligned in practice; go through a float buffer if it is not.
    float *tmp = NULL, *logits = (float *)bin.data;
    if ((uintptr_t)bin.data % _Alignof(float) != 0 && !(logits = tmp = malloc(n_bytes))) {
        enif_release_binary(&bin);
        return error_msg(env, code_atoms[GEMMA4_ERR_OUT_OF_MEMORY], "logits buffer");
    }
    st = gemma4_session_step(s->session, tokens, n_tokens, logits, (size_t)s->n_vocab, &n_logits);
    if (tmp) {
        memcpy(bin.data, tmp, n_bytes);
        free(tmp);
    }
    if (st != GEMMA4_OK) {
        ERL_NIF_TERM e = status_error(env, st);
        enif_release_binary(&bin);
        return e;
    }
    return enif_make_tuple2(env, atom_ok, enif_make_binary(env, &bin));
}

// step(session, tokens, want_logits) on a dirty CPU scheduler -> :ok | {:ok, f32 binary}
static ERL_NIF_TERM step_nif(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
    (void)argc;
    struct session_res *s;
    int32_t *tokens;
    size_t n_tokens;
    int bad_range;
    if (!get_session(env, argv[0], &s) ||
        (enif_compare(argv[2], atom_true) && enif_compare(argv[2], atom_false)))
        return enif_make_badarg(env);
    int want_logits = enif_compare(argv[2], atom_true) == 0;
    if (!get_tokens(env, argv[1], &tokens, &n_tokens, &bad_range)) return enif_make_badarg(env);
    if (bad_range) {
        free(tokens);
        return error_msg(env, code_atoms[GEMMA4_ERR_INVALID_TOKEN], "token id outside int32");
    }
    if (!acquire(s)) {
        free(tokens);
        return busy_error(env);
    }
    ERL_NIF_TERM result = run_step(env, s, tokens, n_tokens, want_logits);
    release(s);
    free(tokens);
    return result;
}

static ERL_NIF_TERM sample_nif(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
    (void)argc;
    struct session_res *s;
    if (!get_session(env, argv[0], &s)) return enif_make_badarg(env);
    if (!acquire(s)) return busy_error(env);
    int32_t tok;
    gemma4_status st = gemma4_session_sample(s->session, &tok);
    ERL_NIF_TERM r = st == GEMMA4_OK ? enif_make_tuple2(env, atom_ok, enif_make_int(env, tok))
                                     : status_error(env, st);
    release(s);
    return r;
}

// Session calls of the form f(session, ...) -> status, answered :ok or {:error, ...}.
static ERL_NIF_TERM status_result(ErlNifEnv *env, struct session_res *s, gemma4_status st) {
    ERL_NIF_TERM r = st == GEMMA4_OK ? atom_ok : status_error(env, st);
    release(s);
    return r;
}

#define SESSION_OR_BADARG(env, t, s)                                                               \
    struct session_res *s;                                                                         \
    if (!get_session(env, t, &s)) return enif_make_badarg(env)

static ERL_NIF_TERM kv_reset_nif(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
    (void)argc;
    SESSION_OR_BADARG(env, argv[0], s);
    if (!acquire(s)) return busy_error(env);
    return status_result(env, s, gemma4_kv_reset(s->session));
}

// truncate(session, n_keep) on a dirty CPU scheduler (it may re-run the kept prefix)
static ERL_NIF_TERM truncate_nif(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
    (void)argc;
    SESSION_OR_BADARG(env, argv[0], s);
    ErlNifSInt64 n_keep;
    if (!enif_get_int64(env, argv[1], &n_keep)) return enif_make_badarg(env);
    if (!acquire(s)) return busy_error(env);
    return status_result(env, s, gemma4_session_truncate(s->session, n_keep));
}

static ERL_NIF_TERM session_info_nif(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
    (void)argc;
    SESSION_OR_BADARG(env, argv[0], s);
    int key;
    if (!enif_get_int(env, argv[1], &key)) return enif_make_badarg(env);
    if (!acquire(s)) return busy_error(env);
    int64_t v;
    gemma4_status st = gemma4_session_info(s->session, key, &v);
    ERL_NIF_TERM r = st == GEMMA4_OK ? enif_make_tuple2(env, atom_ok, enif_make_int64(env, v))
                                     : status_error(env, st);
    release(s);
    return r;
}

// set_precision(session, precision): a GEMMA4_PRECISION_* value (lib/ maps :fp32 / :bf16)
static ERL_NIF_TERM set_precision_nif(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
    (void)argc;
    SESSION_OR_BADARG(env, argv[0], s);
    int precision;
    if (!enif_get_int(env, argv[1], &precision)) return enif_make_badarg(env);
    if (!acquire(s)) return busy_error(env);
    return status_result(env, s, gemma4_session_set_precision(s->session, precision));
}

static ERL_NIF_TERM set_greedy_nif(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
    (void)argc;
    SESSION_OR_BADARG(env, argv[0], s);
    if (!acquire(s)) return busy_error(env);
    return status_result(env, s, gemma4_session_set_greedy(s->session));
}

// set_sampling(session, temperature, top_k, top_p, min_p); floats must be floats (lib/ converts)
static ERL_NIF_TERM set_sampling_nif(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
    (void)argc;
    SESSION_OR_BADARG(env, argv[0], s);
    double temperature, top_p, min_p;
    int top_k;
    if (!enif_get_double(env, argv[1], &temperature) || !enif_get_int(env, argv[2], &top_k) ||
        !enif_get_double(env, argv[3], &top_p) || !enif_get_double(env, argv[4], &min_p))
        return enif_make_badarg(env);
    if (!acquire(s)) return busy_error(env);
    return status_result(env, s,
                         gemma4_session_set_sampling(s->session, (float)temperature, top_k,
                                                     (float)top_p, (float)min_p));
}

static ERL_NIF_TERM set_repetition_penalty_nif(ErlNifEnv *env, int argc,
                                               const ERL_NIF_TERM argv[]) {
    (void)argc;
    SESSION_OR_BADARG(env, argv[0], s);
    double penalty;
    int last_n;
    if (!enif_get_double(env, argv[1], &penalty) || !enif_get_int(env, argv[2], &last_n))
        return enif_make_badarg(env);
    if (!acquire(s)) return busy_error(env);
    return status_result(env, s,
                         gemma4_session_set_repetition_penalty(s->session, (float)penalty, last_n));
}

static ERL_NIF_TERM set_seed_nif(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
    (void)argc;
    SESSION_OR_BADARG(env, argv[0], s);
    ErlNifUInt64 seed;
    if (!enif_get_uint64(env, argv[1], &seed)) return enif_make_badarg(env);
    if (!acquire(s)) return busy_error(env);
    return status_result(env, s, gemma4_session_set_seed(s->session, seed));
}

static ERL_NIF_TERM add_stop_nif(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
    (void)argc;
    SESSION_OR_BADARG(env, argv[0], s);
    int has_nul = 0;
    char *stop = get_cstring(env, argv[1], &has_nul);
    if (!stop) return enif_make_badarg(env);
    if (has_nul) {
        free(stop);
        return error_msg(env, code_atoms[GEMMA4_ERR_INVALID_ARGUMENT], "stop contains a NUL byte");
    }
    if (!acquire(s)) {
        free(stop);
        return busy_error(env);
    }
    ERL_NIF_TERM r = status_result(env, s, gemma4_session_add_stop(s->session, stop));
    free(stop);
    return r;
}

static ERL_NIF_TERM clear_stops_nif(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
    (void)argc;
    SESSION_OR_BADARG(env, argv[0], s);
    if (!acquire(s)) return busy_error(env);
    return status_result(env, s, gemma4_session_clear_stops(s->session));
}

// Thread-safe and lock-free: works while a step or generation runs on the session.
static ERL_NIF_TERM cancel_nif(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
    (void)argc;
    SESSION_OR_BADARG(env, argv[0], s);
    if (!atomic_load(&s->busy)) return atom_ok; // nothing runs; do not cancel the next call
    atomic_store(&s->cancel, 1);
    gemma4_session_cancel(s->session);
    return atom_ok;
}

// ---- Generation on a worker thread ----------------------------------------------------------

struct job {
    struct session_res *s; // kept until the thread ends
    ErlNifPid to;
    ErlNifEnv *env; // holds ref across messages
    ERL_NIF_TERM ref;
    ErlNifEnv *msg_env; // one message at a time, cleared after each send
    char *prompt;       // gemma4_generate, or NULL for gemma4_chat_generate
    char **roles, **contents;
    size_t n_messages;
    char *messages_json, *tools_json; // gemma4_chat_complete (when messages_json != NULL)
    int32_t flags;
    int32_t max_tokens;
    int stopped; // the callback stopped generation (cancel or receiver gone)
};

static void job_free(struct job *j) {
    if (!j) return;
    if (j->env) enif_free_env(j->env);
    if (j->msg_env) enif_free_env(j->msg_env);
    free(j->prompt);
    free(j->messages_json);
    free(j->tools_json);
    free_strings(j->roles, j->n_messages);
    free_strings(j->contents, j->n_messages);
    free(j);
}

static int32_t on_token(const char *piece, size_t len, int32_t token, void *user_data) {
    (void)token;
    struct job *j = user_data;
    if (atomic_load(&j->s->cancel)) {
        j->stopped = 1;
        return 1;
    }
    if (len == 0) return 0; // part of a UTF-8 sequence, held back by the library
    ErlNifEnv *e = j->msg_env;
    ERL_NIF_TERM msg =
        enif_make_tuple3(e, atom_token, enif_make_copy(e, j->ref), make_text(e, piece, len));
    int sent = enif_send(NULL, &j->to, e, msg);
    enif_clear_env(e);
    if (!sent) { // the receiver is gone: nobody reads the rest
        j->stopped = 1;
        return 1;
    }
    return 0;
}

// gemma4_chat_complete's events -> {:gemma4_event, ref, {kind, text}}, kind :text, :reasoning
// or :tool_call (text: the call's JSON). The library sends whole, valid UTF-8 characters.
static ERL_NIF_TERM atom_event, atom_chat_done, atom_text, atom_reasoning, atom_tool_call;

static int32_t on_event(int32_t kind, const char *text, size_t len, void *user_data) {
    struct job *j = user_data;
    if (atomic_load(&j->s->cancel)) {
        j->stopped = 1;
        return 1;
    }
    ErlNifEnv *e = j->msg_env;
    ERL_NIF_TERM k = kind == GEMMA4_CHAT_EVENT_REASONING ? atom_reasoning
                     : kind == GEMMA4_CHAT_EVENT_TOOL_CALL ? atom_tool_call : atom_text;
    ERL_NIF_TERM msg = enif_make_tuple3(e, atom_event, enif_make_copy(e, j->ref),
                                        enif_make_tuple2(e, k, make_text(e, text, len)));
    int sent = enif_send(NULL, &j->to, e, msg);
    enif_clear_env(e);
    if (!sent) {
        j->stopped = 1;
        return 1;
    }
    return 0;
}

// gemma4_chat_result as a binary (JSON), or an empty binary if there is none.
static ERL_NIF_TERM chat_result_term(ErlNifEnv *env, gemma4_session *session) {
    size_t n = 0;
    if (gemma4_chat_result(session, NULL, 0, &n) != GEMMA4_OK) return make_text(env, "", 0);
    ERL_NIF_TERM t;
    unsigned char *p = enif_make_new_binary(env, n + 1, &t);
    if (gemma4_chat_result(session, (char *)p, n + 1, &n) != GEMMA4_OK) return make_text(env, "", 0);
    return enif_make_sub_binary(env, t, 0, n);
}

static ERL_NIF_TERM make_stats(ErlNifEnv *env, gemma4_session *session) {
    static const int32_t keys[] = {GEMMA4_SESSION_LAST_PROMPT_TOKENS,
                                   GEMMA4_SESSION_LAST_GEN_TOKENS,
                                   GEMMA4_SESSION_LAST_PROMPT_US,
                                   GEMMA4_SESSION_LAST_GEN_US,
                                   GEMMA4_SESSION_N_PAST,
                                   GEMMA4_SESSION_N_EVALUATED};
    ERL_NIF_TERM names[] = {atom_prompt_tokens, atom_gen_tokens, atom_prompt_us,
                            atom_gen_us,        atom_n_past,     atom_n_evaluated};
    ERL_NIF_TERM values[6];
    for (int i = 0; i < 6; i++) {
        int64_t v = 0;
        gemma4_session_info(session, keys[i], &v);
        values[i] = enif_make_int64(env, v);
    }
    ERL_NIF_TERM map;
    enif_make_map_from_arrays(env, names, values, 6, &map);
    return map;
}

static void *generate_thread(void *arg) {
    struct job *j = arg;
    struct session_res *s = j->s;
    gemma4_status st;
    if (atomic_load(&s->cancel))
        st = GEMMA4_ERR_CANCELLED; // cancelled before it began
    else if (j->messages_json)
        st = gemma4_chat_complete(s->session, j->messages_json, j->tools_json, j->flags,
                                  j->max_tokens, on_event, j);
    else if (j->prompt)
        st = gemma4_generate(s->session, j->prompt, j->max_tokens, on_token, j);
    else
        st = gemma4_chat_generate(s->session, (const char *const *)j->roles,
                                  (const char *const *)j->contents, j->n_messages, j->max_tokens,
                                  on_token, j);
    if (st == GEMMA4_OK && j->stopped && atomic_load(&s->cancel)) st = GEMMA4_ERR_CANCELLED;
    ErlNifEnv *e = j->msg_env;
    ERL_NIF_TERM ref = enif_make_copy(e, j->ref), msg;
    if (st == GEMMA4_OK && j->messages_json) {
        msg = enif_make_tuple3(e, atom_chat_done, ref, chat_result_term(e, s->session));
    } else if (st == GEMMA4_OK) {
        msg = enif_make_tuple3(e, atom_done, ref, make_stats(e, s->session));
    } else {
        const char *why = gemma4_last_error();
        if (st == GEMMA4_ERR_CANCELLED && (!why[0] || !strstr(why, "cancel")))
            why = "generation cancelled";
        msg = enif_make_tuple3(e, atom_gen_error, ref, make_reason(e, make_code(e, st), why));
    }
    release(s); // before the final message, so its receiver may use the session at once
    enif_send(NULL, &j->to, e, msg);
    job_free(j);
    enif_release_resource(s); // may run session_dtor here; this thread is detached
    return NULL;
}

// Starts the worker; on success the job belongs to the thread.
static ERL_NIF_TERM start_job(ErlNifEnv *env, struct session_res *s, struct job *j,
                              const ERL_NIF_TERM argv[], int pid_arg) {
    if (!enif_get_local_pid(env, argv[pid_arg], &j->to) || !enif_is_ref(env, argv[pid_arg + 1])) {
        job_free(j);
        return enif_make_badarg(env);
    }
    if (!(j->env = enif_alloc_env()) || !(j->msg_env = enif_alloc_env())) {
        job_free(j);
        return error_msg(env, code_atoms[GEMMA4_ERR_OUT_OF_MEMORY], "message environment");
    }
    j->ref = enif_make_copy(j->env, argv[pid_arg + 1]);
    if (!acquire(s)) {
        job_free(j);
        return busy_error(env);
    }
    j->s = s;
    enif_keep_resource(s);
    pthread_attr_t attr;
    pthread_t thread;
    int rc = pthread_attr_init(&attr);
    if (!rc) {
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        rc = pthread_create(&thread, &attr, generate_thread, j);
        pthread_attr_destroy(&attr);
    }
    if (rc) {
        release(s);
        enif_release_resource(s);
        job_free(j);
        return error_msg(env, code_atoms[GEMMA4_ERR_OUT_OF_MEMORY],
                         "could not start a generation thread");
    }
    return atom_ok;
}

// generate(session, prompt, max_tokens, pid, ref) -> :ok | {:error, ...}
static ERL_NIF_TERM generate_nif(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
    (void)argc;
    SESSION_OR_BADARG(env, argv[0], s);
    int max_tokens, has_nul = 0;
    if (!enif_get_int(env, argv[2], &max_tokens)) return enif_make_badarg(env);
    struct job *j = calloc(1, sizeof *j);
    if (!j) return error_msg(env, code_atoms[GEMMA4_ERR_OUT_OF_MEMORY], "job");
    j->max_tokens = max_tokens;
    if (!(j->prompt = get_cstring(env, argv[1], &has_nul))) {
        job_free(j);
        return enif_make_badarg(env);
    }
    if (has_nul) {
        job_free(j);
        return error_msg(env, code_atoms[GEMMA4_ERR_INVALID_ARGUMENT],
                         "prompt contains a NUL byte");
    }
    return start_job(env, s, j, argv, 3);
}

// chat_generate(session, roles, contents, max_tokens, pid, ref) -> :ok | {:error, ...}
static ERL_NIF_TERM chat_generate_nif(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
    (void)argc;
    SESSION_OR_BADARG(env, argv[0], s);
    int max_tokens, nul1 = 0, nul2 = 0;
    if (!enif_get_int(env, argv[3], &max_tokens)) return enif_make_badarg(env);
    struct job *j = calloc(1, sizeof *j);
    if (!j) return error_msg(env, code_atoms[GEMMA4_ERR_OUT_OF_MEMORY], "job");
    j->max_tokens = max_tokens;
    size_t n_roles = 0, n_contents = 0;
    if (!get_string_list(env, argv[1], &j->roles, &n_roles, &nul1)) {
        job_free(j);
        return enif_make_badarg(env);
    }
    j->n_messages = n_roles;
    if (!get_string_list(env, argv[2], &j->contents, &n_contents, &nul2) || n_contents != n_roles) {
        free_strings(j->contents, n_contents);
        j->contents = NULL;
        job_free(j);
        return enif_make_badarg(env);
    }
    if (nul1 || nul2) {
        job_free(j);
        return error_msg(env, code_atoms[GEMMA4_ERR_INVALID_ARGUMENT],
                         "a message contains a NUL byte");
    }
    return start_job(env, s, j, argv, 4);
}

// ---- Chat with tools and thinking (JSON) ---------------------------------------------------

// chat_complete(session, messages_json, tools_json | nil, flags, max_tokens, pid, ref)
static ERL_NIF_TERM chat_complete_nif(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
    (void)argc;
    SESSION_OR_BADARG(env, argv[0], s);
    int max_tokens, flags, nul1 = 0, nul2 = 0;
    if (!enif_get_int(env, argv[3], &flags) || !enif_get_int(env, argv[4], &max_tokens))
        return enif_make_badarg(env);
    struct job *j = calloc(1, sizeof *j);
    if (!j) return error_msg(env, code_atoms[GEMMA4_ERR_OUT_OF_MEMORY], "job");
    j->max_tokens = max_tokens;
    j->flags = flags;
    if (!(j->messages_json = get_cstring(env, argv[1], &nul1)) ||
        (enif_compare(argv[2], atom_nil) != 0 && !(j->tools_json = get_cstring(env, argv[2], &nul2)))) {
        job_free(j);
        return enif_make_badarg(env);
    }
    if (nul1 || nul2) {
        job_free(j);
        return error_msg(env, code_atoms[GEMMA4_ERR_INVALID_ARGUMENT],
                         "the conversation contains a NUL byte");
    }
    return start_job(env, s, j, argv, 5);
}

// chat_render(model | nil, messages_json, tools_json | nil, flags) -> {:ok, text}
struct render_args {
    const gemma4_model *model;
    const char *messages, *tools;
    int32_t flags;
};

static gemma4_status render_fn(const void *p, char *buf, size_t capacity, size_t *n_out) {
    const struct render_args *a = p;
    return gemma4_chat_render_json(a->model, a->messages, a->tools, a->flags, buf, capacity, n_out);
}

static ERL_NIF_TERM chat_render_nif(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
    (void)argc;
    struct model_res *m = NULL;
    int flags, nul1 = 0, nul2 = 0;
    if ((enif_compare(argv[0], atom_nil) != 0 && !get_model(env, argv[0], &m)) ||
        !enif_get_int(env, argv[3], &flags))
        return enif_make_badarg(env);
    char *msgs = get_cstring(env, argv[1], &nul1), *tools = NULL;
    if (!msgs || (enif_compare(argv[2], atom_nil) != 0 && !(tools = get_cstring(env, argv[2], &nul2)))) {
        free(msgs);
        return enif_make_badarg(env);
    }
    ERL_NIF_TERM r;
    if (nul1 || nul2) {
        r = error_msg(env, code_atoms[GEMMA4_ERR_INVALID_ARGUMENT], "the conversation contains a NUL byte");
    } else {
        struct render_args a = {m ? m->model : NULL, msgs, tools, flags};
        r = text_result(env, render_fn, &a);
    }
    free(msgs);
    free(tools);
    return r;
}

// force_tokens(session, [id]) -> :ok (testing aid: the next generation takes these tokens)
static ERL_NIF_TERM force_tokens_nif(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
    (void)argc;
    SESSION_OR_BADARG(env, argv[0], s);
    unsigned n = 0;
    if (!enif_get_list_length(env, argv[1], &n)) return enif_make_badarg(env);
    int32_t *ids = malloc((n ? n : 1) * sizeof *ids);
    if (!ids) return error_msg(env, code_atoms[GEMMA4_ERR_OUT_OF_MEMORY], "tokens");
    ERL_NIF_TERM head, tail = argv[1];
    for (unsigned i = 0; i < n; i++) {
        int v;
        if (!enif_get_list_cell(env, tail, &head, &tail) || !enif_get_int(env, head, &v)) {
            free(ids);
            return enif_make_badarg(env);
        }
        ids[i] = v;
    }
    if (!acquire(s)) {
        free(ids);
        return busy_error(env);
    }
    ERL_NIF_TERM r = status_result(env, s, gemma4_session_force_tokens(s->session, ids, n));
    free(ids);
    return r;
}

static ERL_NIF_TERM reset_sampling_nif(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
    (void)argc;
    SESSION_OR_BADARG(env, argv[0], s);
    if (!acquire(s)) return busy_error(env);
    return status_result(env, s, gemma4_session_reset_sampling(s->session));
}

// get_sampling(session) -> {:ok, {temperature, top_k, top_p, min_p}}
static ERL_NIF_TERM get_sampling_nif(ErlNifEnv *env, int argc, const ERL_NIF_TERM argv[]) {
    (void)argc;
    SESSION_OR_BADARG(env, argv[0], s);
    float t = 0, p = 0, mp = 0;
    int32_t k = 0;
    if (!acquire(s)) return busy_error(env);
    gemma4_status st = gemma4_session_get_sampling(s->session, &t, &k, &p, &mp);
    if (st) return status_result(env, s, st);
    release(s);
    return enif_make_tuple2(env, atom_ok,
                            enif_make_tuple4(env, enif_make_double(env, t), enif_make_int(env, k),
                                             enif_make_double(env, p), enif_make_double(env, mp)));
}

// ---- Registration ---------------------------------------------------------------------------

static int load(ErlNifEnv *env, void **priv_data, ERL_NIF_TERM load_info) {
    (void)priv_data;
    (void)load_info;
    ErlNifResourceFlags flags = ERL_NIF_RT_CREATE | ERL_NIF_RT_TAKEOVER;
    model_type = enif_open_resource_type(env, NULL, "gemma4_model", model_dtor, flags, NULL);
    session_type = enif_open_resource_type(env, NULL, "gemma4_session", session_dtor, flags, NULL);
    if (!model_type || !session_type) return 1;
    if (gemma4_abi_version() != GEMMA4_ABI_VERSION) return 1;
    atom_ok = enif_make_atom(env, "ok");
    atom_error = enif_make_atom(env, "error");
    atom_nil = enif_make_atom(env, "nil");
    atom_true = enif_make_atom(env, "true");
    atom_false = enif_make_atom(env, "false");
    atom_busy = enif_make_atom(env, "busy");
    atom_token = enif_make_atom(env, "gemma4_token");
    atom_done = enif_make_atom(env, "gemma4_done");
    atom_gen_error = enif_make_atom(env, "gemma4_error");
    atom_prompt_tokens = enif_make_atom(env, "prompt_tokens");
    atom_gen_tokens = enif_make_atom(env, "gen_tokens");
    atom_prompt_us = enif_make_atom(env, "prompt_us");
    atom_gen_us = enif_make_atom(env, "gen_us");
    atom_n_past = enif_make_atom(env, "n_past");
    atom_n_evaluated = enif_make_atom(env, "n_evaluated");
    atom_event = enif_make_atom(env, "gemma4_event");
    atom_chat_done = enif_make_atom(env, "gemma4_chat_done");
    atom_text = enif_make_atom(env, "text");
    atom_reasoning = enif_make_atom(env, "reasoning");
    atom_tool_call = enif_make_atom(env, "tool_call");
    for (size_t i = 0; i < sizeof code_names / sizeof code_names[0]; i++)
        code_atoms[i] = enif_make_atom(env, code_names[i]);
    return 0;
}

static ErlNifFunc funcs[] = {
    {"version", 0, version_nif, 0},
    {"live_handles", 0, live_handles_nif, 0},
    {"load", 6, load_nif, ERL_NIF_DIRTY_JOB_IO_BOUND},
    {"model_info", 2, model_info_nif, 0},
    {"model_variant", 1, model_variant_nif, 0},
    {"tokenize", 3, tokenize_nif, ERL_NIF_DIRTY_JOB_CPU_BOUND},
    {"detokenize", 3, detokenize_nif, ERL_NIF_DIRTY_JOB_CPU_BOUND},
    {"token_piece", 2, token_piece_nif, 0},
    {"chat_apply", 4, chat_apply_nif, ERL_NIF_DIRTY_JOB_CPU_BOUND},
    {"session_new", 2, session_new_nif, ERL_NIF_DIRTY_JOB_CPU_BOUND},
    {"step", 3, step_nif, ERL_NIF_DIRTY_JOB_CPU_BOUND},
    {"sample", 1, sample_nif, ERL_NIF_DIRTY_JOB_CPU_BOUND}, // top-p sorts the vocabulary
    {"kv_reset", 1, kv_reset_nif, 0},
    {"truncate", 2, truncate_nif, ERL_NIF_DIRTY_JOB_CPU_BOUND},
    {"session_info", 2, session_info_nif, 0},
    {"set_precision", 2, set_precision_nif, 0},
    {"set_greedy", 1, set_greedy_nif, 0},
    {"set_sampling", 5, set_sampling_nif, 0},
    {"set_repetition_penalty", 3, set_repetition_penalty_nif, 0},
    {"set_seed", 2, set_seed_nif, 0},
    {"add_stop", 2, add_stop_nif, 0},
    {"clear_stops", 1, clear_stops_nif, 0},
    {"cancel", 1, cancel_nif, 0},
    {"generate", 5, generate_nif, 0},
    {"chat_generate", 6, chat_generate_nif, 0},
    {"chat_complete", 7, chat_complete_nif, 0},
    {"chat_render", 4, chat_render_nif, ERL_NIF_DIRTY_JOB_CPU_BOUND},
    {"force_tokens", 2, force_tokens_nif, 0},
    {"reset_sampling", 1, reset_sampling_nif, 0},
    {"get_sampling", 1, get_sampling_nif, 0},
};

ERL_NIF_INIT(Elixir.Gemma4.Native, funcs, load, NULL, NULL, NULL)
