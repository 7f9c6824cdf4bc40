// gemma4-chat: a command-line chat on the public C API alone (abi/gemma4.h).
//
//   gemma4-chat --model DIR [--prompt TEXT | -i] [options]     (gemma4-chat --help lists them)
//
// Streams the reply to stdout as it is generated, then prints prompt and generation speed to
// stderr. The prompt comes from --prompt, else (without -i) from standard input. In interactive
// mode (-i) every turn passes the whole conversation to gemma4_chat_generate, which reuses the
// session's cache for the turns it has already seen; /reset starts a new conversation, /exit
// (or end of input) quits, and Ctrl-C stops the reply being generated (at the "> " prompt it
// quits). Exit status: 0 done, 1 a library error (its message is printed), 2 a usage error,
// 130 interrupted by Ctrl-C outside interactive mode.
#include <errno.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "gemma4.h"

// Default reply length, the same in every gemma4 front end (CLI, Python, C#, Elixir).
#define DEFAULT_MAX_TOKENS 256

static const char usage_text[] =
    "usage: gemma4-chat --model DIR [--prompt TEXT | -i] [options]\n"
    "Chats with a Gemma 4 checkpoint directory (config.json, *.safetensors, tokenizer.json).\n"
    "The prompt is --prompt TEXT, else standard input (read to its end) unless -i is given.\n"
    "\n"
    "  -m, --model DIR         checkpoint directory or .gguf file (required)\n"
    "  -p, --prompt TEXT       the user message (with -i: the first one)\n"
    "  -c, --complete          continue the prompt as plain text (no chat format: for base\n"
    "                          models such as scripts/run.sh's default Gemma 3 270M)\n"
    "  -i, --interactive       chat turn by turn; /reset starts over, /exit quits, Ctrl-C stops\n"
    "                          the reply being generated (at the prompt it quits)\n"
    "  -s, --system TEXT       system message\n"
    "  -n, --max-tokens N      longest reply in tokens (default 256; 0: no reply)\n"
    "      --temp T            sampling temperature, >= 0 (default 0: greedy)\n"
    "      --top-k K           keep the K most likely tokens, >= 0 (0: off; needs --temp > 0)\n"
    "      --top-p P           nucleus sampling, 0 < P <= 1 (1: off)\n"
    "      --min-p P           drop tokens below P x the top probability, 0 <= P <= 1 (0: off)\n"
    "      --repeat-penalty R  repetition penalty over the last 64 tokens, > 0 (1: off)\n"
    "      --seed S            sampler seed, 0 .. 2^64-1 (default 0)\n"
    "      --ctx N             context length in tokens (default 0: min(8192, the model's))\n"
    "      --threads N         CPU threads (default 0: one per physical core)\n"
    "      --device cpu|cuda   engine (default cpu)\n"
    "      --precision fp32|bf16  activations of the matrix products (default fp32; bf16:\n"
    "                          faster prompts on CPU, see gemma4_session_set_precision)\n"
    "  -v, --verbose           print load progress and the model summary\n"
    "  -h, --help              this text\n"
    "      --version           library version\n"
    "Options take their value as the next argument or after '=' (--temp=0.7).\n";

// ---- command line -----------------------------------------------------------------------------

static int usage_error(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
static int usage_error(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("gemma4-chat: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputs(" (gemma4-chat --help lists the options)\n", stderr);
    va_end(ap);
    return 2;
}

// Integer option value in [lo, hi]; 0 on success, else the usage error's exit status.
static int parse_int(const char *opt, const char *v, long long lo, long long hi, long long *out) {
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    if (!*v || *end) return usage_error("%s: '%s' is not an integer", opt, v);
    if (errno == ERANGE || x < lo || x > hi)
        return usage_error("%s: %s is out of range (%lld .. %lld)", opt, v, lo, hi);
    *out = x;
    return 0;
}

// Finite number option value; the range check is the caller's (it knows open or closed ends).
static int parse_num(const char *opt, const char *v, double *out) {
    char *end;
    errno = 0;
    double x = strtod(v, &end);
    if (!*v || *end || errno == ERANGE || !isfinite(x))
        return usage_error("%s: '%s' is not a finite number", opt, v);
    *out = x;
    return 0;
}

static int parse_seed(const char *v, unsigned long long *out) {
    char *end;
    errno = 0;
    unsigned long long x = strtoull(v, &end, 10);
    if (!*v || *end || v[0] == '-' || errno == ERANGE)
        return usage_error("--seed: '%s' is not an integer in 0 .. 2^64-1", v);
    *out = x;
    return 0;
}

struct options {
    const char *model_dir, *prompt, *system;
    int interactive, complete, verbose, device, precision, top_k, threads;
    int32_t max_tokens;
    double temp, top_p, min_p, penalty;
    long long ctx;
    unsigned long long seed;
};

// Parses argv into *o. Returns -1 to go on, else the exit status (0 after --help/--version).
static int parse_args(int argc, char **argv, struct options *o) {
    *o = (struct options){.max_tokens = DEFAULT_MAX_TOKENS, .device = GEMMA4_DEVICE_CPU,
                          .precision = GEMMA4_PRECISION_FP32, .top_p = 1, .penalty = 1};
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (!strcmp(a, "-h") || !strcmp(a, "--help")) {
            fputs(usage_text, stdout);
            return 0;
        }
        if (!strcmp(a, "--version")) {
            printf("gemma4-chat, libgemma4 %s\n", gemma4_version());
            return 0;
        }
        if (!strcmp(a, "-i") || !strcmp(a, "--interactive")) { o->interactive = 1; continue; }
        if (!strcmp(a, "-c") || !strcmp(a, "--complete")) { o->complete = 1; continue; }
        if (!strcmp(a, "-v") || !strcmp(a, "--verbose")) { o->verbose = 1; continue; }

        // options with a value: "--name VALUE" or "--name=VALUE"
        static const char *const valued[] = {"-m", "--model", "-p", "--prompt", "-s", "--system",
            "-n", "--max-tokens", "--temp", "--top-k", "--top-p", "--min-p", "--repeat-penalty",
            "--seed", "--ctx", "--threads", "--device", "--precision"};
        char name[32];
        const char *v = NULL, *eq = a[0] == '-' && a[1] == '-' ? strchr(a, '=') : NULL;
        size_t len = eq ? (size_t)(eq - a) : strlen(a);
        if (len >= sizeof name) return usage_error("unknown option '%s'", a);
        memcpy(name, a, len);
        name[len] = '\0';
        int known = 0;
        for (size_t k = 0; k < sizeof valued / sizeof *valued; k++) known |= !strcmp(name, valued[k]);
        if (!known) {
            if (a[0] == '-' && a[1]) return usage_error("unknown option '%s'", a);
            return usage_error("unexpected argument '%s' (the prompt goes after --prompt)", a);
        }
        if (eq) v = eq + 1;
        else if (i + 1 < argc) v = argv[++i];
        else return usage_error("%s needs a value", name);

        long long n;
        double x;
        int rc = 0;
        if (!strcmp(name, "-m") || !strcmp(name, "--model")) o->model_dir = v;
        else if (!strcmp(name, "-p") || !strcmp(name, "--prompt")) o->prompt = v;
        else if (!strcmp(name, "-s") || !strcmp(name, "--system")) o->system = v;
        else if (!strcmp(name, "-n") || !strcmp(name, "--max-tokens")) {
            if (!(rc = parse_int(name, v, 0, INT32_MAX, &n))) o->max_tokens = (int32_t)n;
        } else if (!strcmp(name, "--temp")) {
            if (!(rc = parse_num(name, v, &x)) && x < 0) rc = usage_error("--temp: %s is negative", v);
            o->temp = x;
        } else if (!strcmp(name, "--top-k")) {
            if (!(rc = parse_int(name, v, 0, INT32_MAX, &n))) o->top_k = (int)n;
        } else if (!strcmp(name, "--top-p")) {
            if (!(rc = parse_num(name, v, &x)) && !(x > 0 && x <= 1))
                rc = usage_error("--top-p: %s is outside (0, 1]", v);
            o->top_p = x;
        } else if (!strcmp(name, "--min-p")) {
            if (!(rc = parse_num(name, v, &x)) && !(x >= 0 && x <= 1))
                rc = usage_error("--min-p: %s is outside [0, 1]", v);
            o->min_p = x;
        } else if (!strcmp(name, "--repeat-penalty")) {
            if (!(rc = parse_num(name, v, &x)) && !(x > 0))
                rc = usage_error("--repeat-penalty: %s is not > 0", v);
            o->penalty = x;
        } else if (!strcmp(name, "--seed")) {
            rc = parse_seed(v, &o->seed);
        } else if (!strcmp(name, "--ctx")) {
            if (!(rc = parse_int(name, v, 0, INT64_MAX, &n))) o->ctx = n;
        } else if (!strcmp(name, "--threads")) {
            if (!(rc = parse_int(name, v, 0, 256, &n))) o->threads = (int)n;
        } else if (!strcmp(name, "--device")) {
            if (!strcmp(v, "cpu")) o->device = GEMMA4_DEVICE_CPU;
            else if (!strcmp(v, "cuda")) o->device = GEMMA4_DEVICE_CUDA;
            else rc = usage_error("--device: '%s' is not cpu or cuda", v);
        } else if (!strcmp(name, "--precision")) {
            if (!strcmp(v, "fp32")) o->precision = GEMMA4_PRECISION_FP32;
            else if (!strcmp(v, "bf16")) o->precision = GEMMA4_PRECISION_BF16;
            else rc = usage_error("--precision: '%s' is not fp32 or bf16", v);
        }
        if (rc) return rc;
    }
    if (!o->model_dir) return usage_error("--model DIR is required");
    if (o->complete && (o->interactive || o->system)) return usage_error("--complete takes no -i or --system");
    return -1;
}

// ---- Ctrl-C -----------------------------------------------------------------------------------
// SIGINT is blocked in every thread (the library's workers inherit the mask) and taken by one
// thread with sigwait, so no code runs in a signal handler: while a reply is being generated it
// calls gemma4_session_cancel (safe from any thread), otherwise it ends the program.

static pthread_mutex_t gen_lock = PTHREAD_MUTEX_INITIALIZER;
static gemma4_session *generating; // the session whose reply is being generated, or NULL
static atomic_int interrupted;     // Ctrl-C stopped the current reply

static void *sigint_thread(void *arg) {
    sigset_t *set = arg;
    for (;;) {
        int sig;
        if (sigwait(set, &sig) != 0) continue;
        pthread_mutex_lock(&gen_lock);
        if (generating) {
            atomic_store(&interrupted, 1);
            gemma4_session_cancel(generating);
            pthread_mutex_unlock(&gen_lock);
            continue;
        }
        pthread_mutex_unlock(&gen_lock);
        fputs("\n", stderr);
        _exit(130);
    }
    return NULL;
}

static void set_generating(gemma4_session *s) {
    pthread_mutex_lock(&gen_lock);
    generating = s;
    pthread_mutex_unlock(&gen_lock);
}

// ---- library callbacks --------------------------------------------------------------------------

struct reply {
    char *text;
    size_t len, cap;
};

static int32_t on_token(const char *piece, size_t len, int32_t token, void *user_data) {
    (void)token;
    struct reply *r = user_data;
    fwrite(piece, 1, len, stdout);
    fflush(stdout);
    if (r->len + len + 1 > r->cap) {
        size_t cap = (r->len + len + 1) * 2;
        char *p = realloc(r->text, cap);
        if (!p) return 1; // stop generating rather than lose text silently
        r->text = p;
        r->cap = cap;
    }
    memcpy(r->text + r->len, piece, len);
    r->len += len;
    r->text[r->len] = '\0';
    return 0;
}

// Load progress and warnings (with -v or -i; warnings always).
static void on_log(int32_t level, const char *message, void *user_data) {
    int verbose = *(const int *)user_data;
    if (level <= GEMMA4_LOG_WARN || (verbose && level <= GEMMA4_LOG_INFO))
        fprintf(stderr, "gemma4: %s\n", message);
}

// Prints the library's message. `what` says which step failed, unless the message already
// starts with it ("generate: prompt of ..." needs no second "generate: ").
static int fail(const char *what, gemma4_status st) {
    const char *msg = gemma4_last_error();
    size_t n = strlen(what);
    if (!strncmp(msg, what, n) && msg[n] == ':') fprintf(stderr, "gemma4-chat: %s (%s)\n", msg, gemma4_status_name(st));
    else fprintf(stderr, "gemma4-chat: %s: %s (%s)\n", what, msg, gemma4_status_name(st));
    return 1;
}

// Reads all of stdin; NULL (with a message) when it fails or holds no text.
static char *read_stdin(void) {
    size_t len = 0, cap = 4096;
    char *buf = malloc(cap);
    while (buf) {
        size_t got = fread(buf + len, 1, cap - len - 1, stdin);
        len += got;
        if (got == 0) break;
        if (len + 1 == cap) {
            char *p = realloc(buf, cap *= 2);
            if (!p) free(buf);
            buf = p;
        }
    }
    if (!buf || ferror(stdin)) {
        fprintf(stderr, "gemma4-chat: cannot read the prompt from standard input\n");
        free(buf);
        return NULL;
    }
    while (len && (buf[len - 1] == '\n' || buf[len - 1] == '\r')) len--;
    buf[len] = '\0';
    if (!len) {
        fprintf(stderr, "gemma4-chat: the prompt on standard input is empty (give --prompt TEXT or -i)\n");
        free(buf);
        return NULL;
    }
    if (memchr(buf, '\0', len)) {
        fprintf(stderr, "gemma4-chat: the prompt on standard input contains a NUL byte\n");
        free(buf);
        return NULL;
    }
    return buf;
}

// ---- the conversation ---------------------------------------------------------------------------

struct conversation {
    const char **roles;
    char **contents;
    size_t n, cap;
    size_t n_keep; // messages /reset keeps (the system message)
};

// Replaces each byte that is not part of a valid UTF-8 sequence with U+FFFD, in a new string.
// The streamed reply of a model can hold such bytes (a byte token that starts no sequence), and
// the chat functions take only valid UTF-8 back.
static char *utf8_clean(const char *s, size_t len, size_t *n_out) {
    char *out = malloc(len * 3 + 1), *o = out;
    if (!out) return NULL;
    for (size_t i = 0; i < len;) {
        unsigned char b = (unsigned char)s[i];
        size_t n = b < 0x80 ? 1 : (b >> 5) == 6 ? 2 : (b >> 4) == 14 ? 3 : (b >> 3) == 30 ? 4 : 0;
        int ok = n > 0 && i + n <= len;
        for (size_t k = 1; ok && k < n; k++) ok = ((unsigned char)s[i + k] >> 6) == 2;
        if (ok && n > 1) { // no overlong forms, surrogates or code points past U+10FFFF
            unsigned cp = b & (0x7f >> n);
            for (size_t k = 1; k < n; k++) cp = cp << 6 | ((unsigned char)s[i + k] & 0x3f);
            ok = cp >= (n == 2 ? 0x80u : n == 3 ? 0x800u : 0x10000u) && cp <= 0x10ffff &&
                 !(cp >= 0xd800 && cp <= 0xdfff);
        }
        if (ok) {
            memcpy(o, s + i, n);
            o += n;
            i += n;
        } else {
            memcpy(o, "\xef\xbf\xbd", 3);
            o += 3;
            i++;
        }
    }
    *o = '\0';
    *n_out = (size_t)(o - out);
    return out;
}

static int conv_add(struct conversation *c, const char *role, const char *content, size_t len) {
    if (c->n == c->cap) {
        size_t cap = c->cap ? c->cap * 2 : 16;
        const char **r = realloc(c->roles, cap * sizeof *r);
        if (r) c->roles = r;
        char **t = r ? realloc(c->contents, cap * sizeof *t) : NULL;
        if (!t) return -1;
        c->contents = t;
        c->cap = cap;
    }
    char *copy = malloc(len + 1);
    if (!copy) return -1;
    memcpy(copy, content, len);
    copy[len] = '\0';
    c->roles[c->n] = role;
    c->contents[c->n++] = copy;
    return 0;
}

static void conv_truncate(struct conversation *c, size_t n) {
    while (c->n > n) free(c->contents[--c->n]);
}

// One turn: the user's message, the streamed reply, the speed line. Returns a gemma4_status.
static gemma4_status turn(gemma4_session *chat, struct conversation *c, const char *user,
                          int32_t max_tokens) {
    if (conv_add(c, "user", user, strlen(user))) {
        fprintf(stderr, "gemma4-chat: out of memory\n");
        return GEMMA4_ERR_OUT_OF_MEMORY;
    }
    struct reply r = {0};
    atomic_store(&interrupted, 0);
    set_generating(chat);
    gemma4_status st = gemma4_chat_generate(chat, c->roles, (const char *const *)c->contents, c->n,
                                            max_tokens, on_token, &r);
    set_generating(NULL);
    printf("\n");
    fflush(stdout);
    if (st == GEMMA4_ERR_CANCELLED && atomic_load(&interrupted)) {
        fprintf(stderr, "[stopped]\n");
        st = GEMMA4_OK; // what was generated stays in the conversation
    }
    if (st != GEMMA4_OK) {
        free(r.text);
        conv_truncate(c, c->n - 1); // the failed turn is not part of the conversation
        return fail("generate", st);
    }
    size_t n_clean = 0;
    char *clean = utf8_clean(r.text ? r.text : "", r.len, &n_clean);
    free(r.text);
    if (!clean || conv_add(c, "model", clean, n_clean)) {
        free(clean);
        fprintf(stderr, "gemma4-chat: out of memory\n");
        return GEMMA4_ERR_OUT_OF_MEMORY;
    }
    free(clean);
    int64_t pt = 0, pus = 0, gt = 0, gus = 0;
    gemma4_session_info(chat, GEMMA4_SESSION_LAST_PROMPT_TOKENS, &pt);
    gemma4_session_info(chat, GEMMA4_SESSION_LAST_PROMPT_US, &pus);
    gemma4_session_info(chat, GEMMA4_SESSION_LAST_GEN_TOKENS, &gt);
    gemma4_session_info(chat, GEMMA4_SESSION_LAST_GEN_US, &gus);
    fprintf(stderr, "[prompt: %lld tokens, %.1f tok/s | generation: %lld tokens, %.1f tok/s]\n",
            (long long)pt, pus > 0 ? pt * 1e6 / pus : 0.0, (long long)gt,
            gus > 0 ? gt * 1e6 / gus : 0.0);
    return GEMMA4_OK;
}

// "gemma4-chat: e2b from DIR: 10.2 GB of weights, CPU, 8 threads, context 8192"
static void print_model_line(gemma4_model *model, const char *dir) {
    char variant[32] = "?";
    size_t n;
    int64_t bytes = 0, device = 0, threads = 0, ctx = 0;
    gemma4_model_variant(model, variant, sizeof variant, &n);
    gemma4_model_info(model, GEMMA4_INFO_WEIGHT_BYTES, &bytes);
    gemma4_model_info(model, GEMMA4_INFO_DEVICE, &device);
    gemma4_model_info(model, GEMMA4_INFO_N_THREADS, &threads);
    gemma4_model_info(model, GEMMA4_INFO_N_CTX, &ctx);
    fprintf(stderr, "gemma4-chat: %s from %s: %.1f MB of weights, %s, %lld threads, context %lld\n",
            variant, dir, bytes / 1e6, device == GEMMA4_DEVICE_CUDA ? "CUDA" : "CPU",
            (long long)threads, (long long)ctx);
}

int main(int argc, char **argv) {
    struct options o;
    int rc = parse_args(argc, argv, &o);
    if (rc >= 0) return rc;
    rc = 0;
    int verbose = o.verbose || o.interactive;

    char *stdin_prompt = NULL;
    if (!o.prompt && !o.interactive) {
        if (isatty(STDIN_FILENO)) fprintf(stderr, "gemma4-chat: reading the prompt from standard input (end it with Ctrl-D)\n");
        if (!(stdin_prompt = read_stdin())) return 2;
        o.prompt = stdin_prompt;
    }

    static sigset_t sigint;
    sigemptyset(&sigint);
    sigaddset(&sigint, SIGINT);
    pthread_t sig_thread;
    if (pthread_sigmask(SIG_BLOCK, &sigint, NULL) || pthread_create(&sig_thread, NULL, sigint_thread, &sigint)) {
        fprintf(stderr, "gemma4-chat: cannot set up Ctrl-C handling\n");
        return 1;
    }

    gemma4_set_log_callback(on_log, &verbose);
    gemma4_model *model;
    gemma4_session *chat;
    gemma4_status st = gemma4_load(o.model_dir, o.device, 0, o.ctx, o.threads, &model);
    if (st) return fail("load", st);
    if (verbose) print_model_line(model, o.model_dir);
    if ((st = gemma4_session_new(model, 0, &chat))) return fail("session", st);
    gemma4_model_free(model); // the session keeps it alive
    if (o.temp > 0 &&
        (st = gemma4_session_set_sampling(chat, (float)o.temp, o.top_k, (float)o.top_p, (float)o.min_p)))
        return fail("sampling", st);
    if ((st = gemma4_session_set_repetition_penalty(chat, (float)o.penalty, 64))) return fail("penalty", st);
    gemma4_session_set_seed(chat, o.seed);
    if ((st = gemma4_session_set_precision(chat, o.precision))) return fail("precision", st);

    if (o.complete) { // plain-text continuation: the prompt, then what the model adds to it
        struct reply r = {0};
        fputs(o.prompt, stdout);
        fflush(stdout);
        set_generating(chat);
        st = gemma4_generate(chat, o.prompt, o.max_tokens, on_token, &r);
        set_generating(NULL);
        printf("\n");
        free(r.text);
        free(stdin_prompt);
        if (st == GEMMA4_ERR_CANCELLED && atomic_load(&interrupted)) st = GEMMA4_OK;
        rc = st != GEMMA4_OK ? (fail("generate", st), 1) : atomic_load(&interrupted) ? 130 : 0;
        gemma4_session_free(chat);
        return rc;
    }
    struct conversation c = {0};
    if (o.system && conv_add(&c, "system", o.system, strlen(o.system))) return 1;
    c.n_keep = c.n;
    if (o.interactive)
        fprintf(stderr, "gemma4-chat: type a message; /reset starts over, /exit quits, Ctrl-C stops a reply\n");

    char *line = NULL;
    size_t line_cap = 0;
    const char *first = o.prompt;
    for (;;) {
        const char *user = first;
        first = NULL;
        if (!user) {
            if (!o.interactive) break;
            printf("> ");
            fflush(stdout);
            ssize_t got = getline(&line, &line_cap, stdin);
            if (got < 0) {
                printf("\n");
                break; // end of input
            }
            size_t n = (size_t)got;
            if (n && line[n - 1] == '\n') n--;
            if (n && line[n - 1] == '\r') n--;
            if (memchr(line, '\0', n)) {
                fprintf(stderr, "gemma4-chat: the line contains a NUL byte; not sent\n");
                continue;
            }
            line[n] = '\0';
            if (!line[0]) continue;
            if (!strcmp(line, "/exit") || !strcmp(line, "/quit")) break;
            if (!strcmp(line, "/reset")) {
                conv_truncate(&c, c.n_keep);
                if ((st = gemma4_kv_reset(chat))) {
                    rc = fail("reset", st);
                    break;
                }
                fprintf(stderr, "[new conversation]\n");
                continue;
            }
            if (!strcmp(line, "/help")) {
                fprintf(stderr, "/reset: new conversation (keeps --system), /exit: quit, Ctrl-C: stop the reply\n");
                continue;
            }
            if (line[0] == '/' && line[1] != '/') {
                fprintf(stderr, "gemma4-chat: unknown command %s (/help lists them; start with // to send a '/')\n", line);
                continue;
            }
            user = line[0] == '/' ? line + 1 : line;
        }
        st = turn(chat, &c, user, o.max_tokens);
        if (st != GEMMA4_OK && !o.interactive) {
            rc = 1;
            break;
        }
        if (atomic_load(&interrupted) && !o.interactive) {
            rc = 130;
            break;
        }
        if (st == GEMMA4_ERR_CONTEXT_FULL) fprintf(stderr, "gemma4-chat: /reset starts a new conversation\n");
    }
    free(line);
    conv_truncate(&c, 0);
    free(c.roles);
    free(c.contents);
    free(stdin_prompt);
    gemma4_session_free(chat);
    return rc;
}
