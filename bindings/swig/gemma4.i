// gemma4.i: SWIG interface generating Python and C# wrappers of abi/gemma4.h.
//
// What SWIG sees is the public header (for its constants and the simple functions) plus a thin
// C++ layer in this file: Model and Session classes whose constructors and destructors pair
// gemma4_load/gemma4_session_new with the _free functions, so the target language's garbage
// collector (Python refcounting, C# finalizers / Dispose) owns every handle and nothing leaks.
// The layer also hides the (buf, capacity, *n_out) convention: token arrays cross as int32
// vectors (Python: any int sequence in, tuple out; C#: IntVector), logits as float vectors,
// text as std::string (UTF-8). Every non-OK status becomes an exception carrying the status
// code, its name and gemma4_last_error(): Python raises gemma4swig.Gemma4Error(status, name,
// message); C# throws System.ApplicationException("GEMMA4_ERR_...(n): message").
// This is not the primary Python binding (bindings/python is, with numpy and streaming); it is
// the generated one for languages SWIG reaches.
%module(directors="1") gemma4swig

%{
#include <exception>
#include <stdexcept>
#include <string>
#include <vector>
#include "gemma4.h"

// The status of the last failed wrapped call on this thread, set by g4swig_check and turned
// into a target-language exception by the %exception block below.
static thread_local gemma4_status g4swig_status = 0;
static thread_local std::string g4swig_message;

static bool g4swig_check(gemma4_status st) {
    if (st == GEMMA4_OK) return true;
    g4swig_status = st;
    g4swig_message = gemma4_last_error();
    return false;
}
// Generated text is the concatenation of token bytes, and a random or confused model can emit
// byte-fallback tokens that are not valid UTF-8. Target-language strings need valid UTF-8 (Mono
// aborts on invalid input), so each invalid byte becomes U+FFFD, as Python's errors="replace".
static std::string g4swig_utf8(const std::string &in) {
    std::string out;
    out.reserve(in.size());
    const unsigned char *p = (const unsigned char *)in.data();
    size_t n = in.size(), i = 0;
    while (i < n) {
        unsigned char c = p[i];
        size_t len = c < 0x80 ? 1 : (c >> 5) == 6 ? 2 : (c >> 4) == 14 ? 3 : (c >> 3) == 30 ? 4 : 0;
        bool ok = len > 0 && i + len <= n;
        for (size_t k = 1; ok && k < len; k++) ok = (p[i + k] & 0xC0) == 0x80;
        if (ok && len > 1) {  // reject overlong forms, surrogates and values above U+10FFFF
            uint32_t cp = c & (0x7F >> len);
            for (size_t k = 1; k < len; k++) cp = (cp << 6) | (p[i + k] & 0x3F);
            static const uint32_t min_cp[5] = {0, 0, 0x80, 0x800, 0x10000};
            ok = cp >= min_cp[len] && cp <= 0x10FFFF && !(cp >= 0xD800 && cp <= 0xDFFF);
        }
        if (ok) {
            out.append(in, i, len);
            i += len;
        } else {
            out += "\xEF\xBF\xBD";
            i++;
        }
    }
    return out;
}

// A string for a NUL-terminated C parameter: an embedded NUL would silently cut it there, so it
// is refused (INVALID_ARGUMENT naming the parameter). Python strings reach std::string whole;
// C# strings are checked before marshalling (csin typemap below), which would cut them too.
static bool g4swig_cstr(const std::string &s, const char *what) {
    size_t at = s.find('\0');
    if (at == std::string::npos) return true;
    g4swig_status = GEMMA4_ERR_INVALID_ARGUMENT;
    g4swig_message = std::string(what) + " contains a NUL character at byte " + std::to_string(at) +
                     " (the C API takes NUL-terminated strings)";
    return false;
}
static bool g4swig_cstrs(const std::vector<std::string> &v, const char *what) {
    for (size_t i = 0; i < v.size(); i++)
        if (!g4swig_cstr(v[i], (std::string(what) + "[" + std::to_string(i) + "]").c_str())) return false;
    return true;
}

// Thrown by constructors only, so that a failed `new` frees the half-built object; the
// status is already recorded.
struct g4swig_error {};
static bool g4swig_fail(gemma4_status st, const char *msg) {
    g4swig_status = st;
    g4swig_message = msg;
    return false;
}
%}

%include <stdint.i>
%include <std_string.i>
#if defined(SWIGCSHARP)
// C# marshals a string to a NUL-terminated char *, which would end at an embedded NUL: refuse
// it before the call (ArgumentException naming the parameter), for every std::string parameter
// (StringVector.Add included).
%typemap(csin, pre="    if ($csinput != null && $csinput.IndexOf('\\0') >= 0) throw new System.ArgumentException(\"contains a NUL character (the C API takes NUL-terminated strings)\", \"$csinput\");") const std::string & "$csinput"
%typemap(csin, pre="    if ($csinput != null && $csinput.IndexOf('\\0') >= 0) throw new System.ArgumentException(\"contains a NUL character (the C API takes NUL-terminated strings)\", \"$csinput\");") std::string "$csinput"
#endif
%include <std_vector.i>

namespace std {
%template(IntVector) vector<int32_t>;
%template(FloatVector) vector<float>;
%template(StringVector) vector<string>;
}

// ---- status -> exception ------------------------------------------------------------------------
#if defined(SWIGPYTHON)
%{
static void g4swig_raise_python(void) {
    PyObject *mod = PyImport_ImportModule("gemma4swig");
    PyObject *cls = mod ? PyObject_GetAttrString(mod, "Gemma4Error") : NULL;
    if (!cls) {
        PyErr_Clear();
        cls = PyExc_RuntimeError;
        Py_INCREF(cls);
    }
    PyObject *args = Py_BuildValue("(iss)", (int)g4swig_status, gemma4_status_name(g4swig_status),
                                   g4swig_message.c_str());
    PyErr_SetObject(cls, args);
    Py_XDECREF(args);
    Py_DECREF(cls);
    Py_XDECREF(mod);
}
%}
%exception {
    g4swig_status = 0;
    try {
        $action
    } catch (g4swig_error &) {
    } catch (Swig::DirectorException &) {
        SWIG_fail;  // a Python callback raised: its exception is already set
    } catch (std::bad_alloc &) {
        g4swig_fail(GEMMA4_ERR_OUT_OF_MEMORY, "out of memory");
    }
    if (g4swig_status) {
        g4swig_raise_python();
        SWIG_fail;
    }
}
%pythoncode %{
class Gemma4Error(Exception):
    """A failed gemma4 call: .status (GEMMA4_ERR_* value), .name, .message."""
    def __init__(self, status, name, message):
        super().__init__("%s (%d): %s" % (name, status, message))
        self.status, self.name, self.message = status, name, message
%}
#elif defined(SWIGCSHARP)
%exception {
    g4swig_status = 0;
    try {
        $action
    } catch (g4swig_error &) {
    } catch (std::bad_alloc &) {
        g4swig_fail(GEMMA4_ERR_OUT_OF_MEMORY, "out of memory");
    }
    if (g4swig_status) {
        std::string m = std::string(gemma4_status_name(g4swig_status)) + "(" +
                        std::to_string(g4swig_status) + "): " + g4swig_message;
        SWIG_CSharpSetPendingException(SWIG_CSharpApplicationException, m.c_str());
        return $null;
    }
}
#endif

// ---- the raw header: constants and the functions that need no buffers ---------------------------
// Functions with handles or (buf, capacity, *n_out) are reached through the classes below, which
// own the handles; exporting them raw as well would reintroduce manual frees.
%ignore gemma4_set_log_callback;
%ignore gemma4_load;
%ignore gemma4_load_ex;
%ignore gemma4_model_free;
%ignore gemma4_model_info;
%ignore gemma4_model_variant;
%ignore gemma4_tokenize;
%ignore gemma4_detokenize;
%ignore gemma4_token_piece;
%ignore gemma4_chat_apply;
%ignore gemma4_session_new;
%ignore gemma4_session_free;
%ignore gemma4_session_step;
%ignore gemma4_kv_reset;
%ignore gemma4_session_truncate;
%ignore gemma4_session_info;
%ignore gemma4_session_set_precision;
%ignore gemma4_session_set_greedy;
%ignore gemma4_session_set_sampling;
%ignore gemma4_session_set_repetition_penalty;
%ignore gemma4_session_set_seed;
%ignore gemma4_session_sample;
%ignore gemma4_session_add_stop;
%ignore gemma4_session_clear_stops;
%ignore gemma4_generate;
%ignore gemma4_chat_generate;
%ignore gemma4_session_cancel;
%ignore gemma4_session_clear_cancel;
%ignore gemma4_chat_render_json;
%ignore gemma4_chat_tokenize_json;
%ignore gemma4_chat_complete;
%ignore gemma4_chat_result;
%ignore gemma4_session_reset_sampling;
%ignore gemma4_session_get_sampling;
%ignore gemma4_session_force_tokens;
%ignore gemma4_chat_event_fn;
%ignore gemma4_token_fn;
%ignore gemma4_log_fn;
#define GEMMA4_API
%include "gemma4.h"

// ---- callbacks ----------------------------------------------------------------------------------
// Subclass TokenCallback in Python or C# and override on_token; return non-zero to stop.
%feature("director") TokenCallback;
%newobject Model::session;

%inline %{
class TokenCallback {
public:
    virtual ~TokenCallback() {}
    // piece: the UTF-8 bytes this token adds (may be empty); token: its id, -1 for a final flush.
    virtual int on_token(const std::string &piece, int32_t token) { (void)piece; (void)token; return 0; }
};

class Session;

class Model {
public:
    // gemma4_load_ex; device 0 = CPU, 1 = CUDA; flags GEMMA4_LOAD_IN_MEMORY reads the weight
    // files into memory instead of mapping them (a mapped file must not change while loaded).
    Model(const std::string &model_dir, int32_t device = GEMMA4_DEVICE_CPU,
          int32_t device_index = 0, int64_t n_ctx = 0, int32_t n_threads = 0,
          uint32_t flags = 0) : h_(nullptr) {
        if (!g4swig_cstr(model_dir, "model_dir")) throw g4swig_error();
        if (!g4swig_check(gemma4_load_ex(model_dir.c_str(), device, device_index, n_ctx, n_threads,
                                         flags, &h_)))
            throw g4swig_error();
    }
    ~Model() { gemma4_model_free(h_); }
    // Drops the model reference now (sessions keep the weights alive); later calls fail.
    void close() { gemma4_model_free(h_); h_ = nullptr; }

    int64_t info(int32_t key) const {
        int64_t v = 0;
        if (ok()) g4swig_check(gemma4_model_info(h_, key, &v));
        return v;
    }
    std::string variant() const {
        char buf[64];
        size_t n = 0;
        if (ok() && g4swig_check(gemma4_model_variant(h_, buf, sizeof buf, &n))) return std::string(buf, n);
        return std::string();
    }
    std::vector<int32_t> tokenize(const std::string &text, bool add_bos = false) const {
        std::vector<int32_t> ids(text.size() + 2);  // every token covers >= 1 byte, plus <bos>
        size_t n = 0;
        int32_t flags = add_bos ? GEMMA4_TOKENIZE_ADD_BOS : 0;
        if (!ok() || !g4swig_check(gemma4_tokenize(h_, text.data(), text.size(), flags, ids.data(),
                                                   ids.size(), &n)))
            return std::vector<int32_t>();
        ids.resize(n);
        return ids;
    }
    std::string detokenize(const std::vector<int32_t> &ids, bool skip_special = false) const {
        int32_t flags = skip_special ? GEMMA4_DETOKENIZE_SKIP_SPECIAL : 0;
        size_t n = 0;
        if (!ok() || !g4swig_check(gemma4_detokenize(h_, ids.data(), ids.size(), flags, NULL, 0, &n)))
            return std::string();
        std::string out(n + 1, '\0');
        if (!g4swig_check(gemma4_detokenize(h_, ids.data(), ids.size(), flags, &out[0], out.size(), &n)))
            return std::string();
        out.resize(n);
        return out;
    }
    std::string chat_apply(const std::vector<std::string> &roles,
                           const std::vector<std::string> &contents,
                           bool add_generation_prompt = true) const {
        if (roles.size() != contents.size()) {
            g4swig_fail(GEMMA4_ERR_INVALID_ARGUMENT, "chat_apply: roles and contents differ in length");
            return std::string();
        }
        if (!g4swig_cstrs(roles, "roles") || !g4swig_cstrs(contents, "contents")) return std::string();
        std::vector<const char *> r, c;
        for (size_t i = 0; i < roles.size(); i++) { r.push_back(roles[i].c_str()); c.push_back(contents[i].c_str()); }
        size_t n = 0;
        int32_t gp = add_generation_prompt ? 1 : 0;
        if (!ok() || !g4swig_check(gemma4_chat_apply(h_, r.data(), c.data(), r.size(), gp, NULL, 0, &n)))
            return std::string();
        std::string out(n + 1, '\0');
        if (!g4swig_check(gemma4_chat_apply(h_, r.data(), c.data(), r.size(), gp, &out[0], out.size(), &n)))
            return std::string();
        out.resize(n);
        return out;
    }
    // A new session (the caller owns it; %newobject).
    Session *session(int64_t n_ctx = 0);

#ifndef SWIG
    gemma4_model *handle() const { return h_; }
#endif
private:
    bool ok() const { return h_ ? true : g4swig_fail(GEMMA4_ERR_INVALID_ARGUMENT, "model is closed"); }
    gemma4_model *h_;
    Model(const Model &);
    Model &operator=(const Model &);
};

class Session {
public:
    Session(Model &model, int64_t n_ctx = 0) : h_(nullptr), vocab_(0) {
        if (!model.handle()) {
            g4swig_fail(GEMMA4_ERR_INVALID_ARGUMENT, "model is closed");
            throw g4swig_error();
        }
        int64_t v = 0;
        if (!g4swig_check(gemma4_model_info(model.handle(), GEMMA4_INFO_VOCAB_SIZE, &v)) ||
            !g4swig_check(gemma4_session_new(model.handle(), n_ctx, &h_)))
            throw g4swig_error();
        vocab_ = (size_t)v;
    }
    ~Session() { gemma4_session_free(h_); }

    // Runs tokens; returns the last position's logits (vocab floats).
    std::vector<float> step(const std::vector<int32_t> &tokens) {
        std::vector<float> logits(vocab_);
        if (!g4swig_check(gemma4_session_step(h_, tokens.data(), tokens.size(), logits.data(),
                                              logits.size(), NULL)))
            return std::vector<float>();
        return logits;
    }
    // Runs tokens without copying logits out (sample() still sees them).
    void eval(const std::vector<int32_t> &tokens) {
        g4swig_check(gemma4_session_step(h_, tokens.data(), tokens.size(), NULL, 0, NULL));
    }
    int32_t sample() {
        int32_t t = -1;
        g4swig_check(gemma4_session_sample(h_, &t));
        return t;
    }
    void reset() { g4swig_check(gemma4_kv_reset(h_)); }
    void truncate(int64_t n_keep) { g4swig_check(gemma4_session_truncate(h_, n_keep)); }
    int64_t info(int32_t key) const {
        int64_t v = 0;
        g4swig_check(gemma4_session_info(h_, key, &v));
        return v;
    }
    int64_t n_past() const { return info(GEMMA4_SESSION_N_PAST); }
    // GEMMA4_PRECISION_FP32 (the default) or GEMMA4_PRECISION_BF16 (llama.cpp's numerics: bf16
    // activations for bf16 weights, 8-bit ones for GGUF block-quantized weights), from the next
    // step on.
    void set_precision(int32_t precision) {
        g4swig_check(gemma4_session_set_precision(h_, precision));
    }
    int32_t precision() const { return (int32_t)info(GEMMA4_SESSION_PRECISION); }
    void set_greedy() { g4swig_check(gemma4_session_set_greedy(h_)); }
    void set_sampling(float temperature, int32_t top_k = 0, float top_p = 1.0f, float min_p = 0.0f) {
        g4swig_check(gemma4_session_set_sampling(h_, temperature, top_k, top_p, min_p));
    }
    void set_repetition_penalty(float penalty, int32_t last_n = 0) {
        g4swig_check(gemma4_session_set_repetition_penalty(h_, penalty, last_n));
    }
    void set_seed(uint64_t seed) { g4swig_check(gemma4_session_set_seed(h_, seed)); }
    void add_stop(const std::string &stop) {
        if (g4swig_cstr(stop, "stop")) g4swig_check(gemma4_session_add_stop(h_, stop.c_str()));
    }
    void clear_stops() { g4swig_check(gemma4_session_clear_stops(h_)); }
    // Thread-safe: stops a running generate at the next token.
    void cancel() { gemma4_session_cancel(h_); }
    // Drops cancel requests the last call did not answer (see gemma4_session_clear_cancel).
    void clear_cancel() { g4swig_check(gemma4_session_clear_cancel(h_)); }

    // gemma4_generate; returns the whole generated text. callback (may be null) sees each piece.
    std::string generate(const std::string &prompt, int32_t max_tokens, TokenCallback *callback = nullptr) {
        if (!g4swig_cstr(prompt, "prompt")) return std::string();
        Collect c(callback);
        gemma4_status st = gemma4_generate(h_, prompt.c_str(), max_tokens, on_piece, &c);
        return finish(st, c);
    }
    // gemma4_chat_generate over parallel role/content lists; returns the reply text.
    std::string chat_generate(const std::vector<std::string> &roles,
                              const std::vector<std::string> &contents, int32_t max_tokens,
                              TokenCallback *callback = nullptr) {
        if (roles.size() != contents.size()) {
            g4swig_fail(GEMMA4_ERR_INVALID_ARGUMENT, "chat_generate: roles and contents differ in length");
            return std::string();
        }
        if (!g4swig_cstrs(roles, "roles") || !g4swig_cstrs(contents, "contents")) return std::string();
        std::vector<const char *> r, c;
        for (size_t i = 0; i < roles.size(); i++) { r.push_back(roles[i].c_str()); c.push_back(contents[i].c_str()); }
        Collect col(callback);
        gemma4_status st = gemma4_chat_generate(h_, r.data(), c.data(), r.size(), max_tokens, on_piece, &col);
        return finish(st, col);
    }

    // gemma4_chat_complete: the conversation and tools as JSON strings (OpenAI shapes, see
    // gemma4.h); returns the result JSON (content, reasoning, tool_calls, finish_reason, usage).
    // flags: 4 = thinking, 8 = preserve thinking. Events are not streamed through SWIG.
    std::string chat_complete(const std::string &messages_json, const std::string &tools_json,
                              int32_t flags, int32_t max_tokens) {
        if (!g4swig_cstr(messages_json, "messages_json") || !g4swig_cstr(tools_json, "tools_json"))
            return std::string();
        const char *tools = tools_json.empty() ? NULL : tools_json.c_str();
        if (!g4swig_check(gemma4_chat_complete(h_, messages_json.c_str(), tools, flags, max_tokens,
                                               NULL, NULL)))
            return std::string();
        size_t n = 0;
        if (!g4swig_check(gemma4_chat_result(h_, NULL, 0, &n))) return std::string();
        std::string out(n + 1, '\0');
        if (!g4swig_check(gemma4_chat_result(h_, &out[0], out.size(), &n))) return std::string();
        out.resize(n);
        return out;
    }
    // Testing aid (gemma4_session_force_tokens).
    void force_tokens(const std::vector<int32_t> &tokens) {
        g4swig_check(gemma4_session_force_tokens(h_, tokens.data(), tokens.size()));
    }

private:
    struct Collect {
        explicit Collect(TokenCallback *cb) : cb(cb) {}
        TokenCallback *cb;
        std::string text;
        std::exception_ptr error;  // from the callback, rethrown once C has returned
    };
    // C frames must not be unwound through: exceptions from the callback stop generation and
    // are rethrown after gemma4_generate returns.
    static int32_t on_piece(const char *piece, size_t len, int32_t token, void *user) {
        Collect *c = static_cast<Collect *>(user);
        c->text.append(piece, len);
        if (!c->cb) return 0;
        if (c->error) return 1;  // the callback already failed: do not call it again
        try {
            return c->cb->on_token(g4swig_utf8(std::string(piece, len)), token);
        } catch (...) {
            c->error = std::current_exception();
            return 1;
        }
    }
    std::string finish(gemma4_status st, Collect &c) {
        if (c.error) std::rethrow_exception(c.error);
        g4swig_check(st);
        return g4swig_utf8(c.text);
    }
    gemma4_session *h_;
    size_t vocab_;
    Session(const Session &);
    Session &operator=(const Session &);
};

Session *Model::session(int64_t n_ctx) {
    if (!ok()) return nullptr;
    return new Session(*this, n_ctx);  // throws g4swig_error on failure
}
%}
