// Checkpoint validation through g4_model_load: a config that does not describe the checkpoint
// (missing, extra or mis-shaped tensors), a truncated file, NaN weights and files that cannot be
// read (a directory, FIFO, socket or /proc file in their place, no permission) each give a clear
// error naming the tensor or file, and leave nothing allocated (ASan/valgrind runs check that).
#define _GNU_SOURCE // memmem
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "harness.h"
#include "model.h"

// A model dir with e2b's checkpoint (copied, possibly modified) and config.json with `from`
// replaced by `to` (once).
static const char *make_dir(const char *from, const char *to, const char *ckpt, size_t ckpt_len) {
    const char *dir = g4_tmpdir("weights");
    assert_non_null(dir);
    size_t n;
    char *cfg = g4_read_file(g4_src_path("tests/golden/e2b/config.json"), &n);
    assert_non_null(cfg);
    char *hit = from ? strstr(cfg, from) : NULL;
    assert_true(!from || hit);
    char out[8192], path[4200];
    if (hit)
        snprintf(out, sizeof out, "%.*s%s%s", (int)(hit - cfg), cfg, to, hit + strlen(from));
    else
        snprintf(out, sizeof out, "%s", cfg);
    snprintf(path, sizeof path, "%s/config.json", dir);
    assert_int_equal(g4_write_file(path, out, strlen(out)), 0);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    if (ckpt) {
        assert_int_equal(g4_write_file(path, ckpt, ckpt_len), 0);
    } else {
        assert_int_equal(symlink(g4_src_path("tests/golden/e2b/model.safetensors"), path), 0);
    }
    free(cfg);
    return dir;
}

static void expect_load_error(const char *dir, g4_status code, const char *substr) {
    struct g4_model *m = (struct g4_model *)0x1;
    g4_status st = g4_model_load(&m, dir, G4_DEVICE_CPU, 0, 64, 1);
    printf("-> %s: %s\n", g4_status_name(st), g4_last_error());
    assert_int_equal(st, code);
    assert_null(m);
    assert_non_null(strstr(g4_last_error(), substr));
}

static void test_config_mismatch(void **state) {
    (void)state;
    static const struct { const char *from, *to; g4_status st; const char *msg; } cases[] = {
        // shared layers 5..7 have no k_proj: a config without sharing needs them
        {"\"num_kv_shared_layers\": 3", "\"num_kv_shared_layers\": 0", G4_ERR_FORMAT,
         "missing tensor model.layers.5.self_attn.k_proj.weight"},
        {"\"intermediate_size\": 128", "\"intermediate_size\": 96", G4_ERR_FORMAT,
         "tensor model.layers.0.mlp.gate_proj.weight has shape [128,64], config needs [96,64]"},
        {"\"hidden_size_per_layer_input\": 8", "\"hidden_size_per_layer_input\": 0", G4_ERR_FORMAT,
         "unexpected tensor model."},
        {"\"head_dim\": 16", "\"head_dim\": 8", G4_ERR_FORMAT, "q_proj.weight has shape"},
        {"\"vocab_size\": 512", "\"vocab_size\": 1000", G4_ERR_FORMAT,
         "model.embed_tokens.weight has shape [512,64], config needs [1000,64]"},
        {"\"sliding_window\": 8", "\"sliding_window\": 0", G4_ERR_CONFIG, "sliding_window"},
        // read as Gemma 3: Gemma 4's proportional RoPE is refused
        {"\"model_type\": \"gemma4_text\"", "\"model_type\": \"gemma3_text\"",
         G4_ERR_UNSUPPORTED, "partial_rotary_factor 0.25 (Gemma 3: only 1.0)"},
    };
    for (size_t i = 0; i < G4_COUNT(cases); i++) {
        const char *dir = make_dir(cases[i].from, cases[i].to, NULL, 0);
        printf("%s", cases[i].to);
        expect_load_error(dir, cases[i].st, cases[i].msg);
        g4_rm_rf(dir);
    }
    // the unmodified copy loads
    const char *dir = make_dir(NULL, NULL, NULL, 0);
    struct g4_model *m;
    assert_int_equal(g4_model_load(&m, dir, G4_DEVICE_CPU, 0, 64, 1), G4_OK);
    g4_model_release(m);
    g4_rm_rf(dir);
}

// A Gemma 3 checkpoint (one with default RoPE, which a Gemma 4 config accepts) read as Gemma 4
// lacks layer_scalar; nothing is guessed.
static void test_gemma3_as_gemma4(void **state) {
    (void)state;
    const char *dir = g4_tmpdir("weights3");
    assert_non_null(dir);
    size_t n;
    char *cfg = g4_read_file(g4_src_path("tests/golden/gemma3_sliding/config.json"), &n);
    assert_non_null(cfg);
    char *hit = strstr(cfg, "\"gemma3_text\"");
    assert_non_null(hit);
    memcpy(hit, "\"gemma4_text\"", 13);
    char path[4200], out[8192];
    // (without PLE, which Gemma 4's defaults switch on)
    snprintf(out, sizeof out, "{\"hidden_size_per_layer_input\": 0,%s", strchr(cfg, '{') + 1);
    snprintf(path, sizeof path, "%s/config.json", dir);
    assert_int_equal(g4_write_file(path, out, strlen(out)), 0);
    free(cfg);
    snprintf(path, sizeof path, "%s/model.safetensors", dir);
    assert_int_equal(symlink(g4_src_path("tests/golden/gemma3_sliding/model.safetensors"), path), 0);
    expect_load_error(dir, G4_ERR_FORMAT, "missing tensor model.layers.0.layer_scalar");
    g4_rm_rf(dir);
}

static void test_bad_checkpoint_files(void **state) {
    (void)state;
    size_t n;
    char *ck = g4_read_file(g4_src_path("tests/golden/e2b/model.safetensors"), &n);
    assert_non_null(ck);
    // truncated: half the file
    const char *dir = make_dir(NULL, NULL, ck, n / 2);
    expect_load_error(dir, G4_ERR_FORMAT, "truncated");
    g4_rm_rf(dir);
    // NaN in the final norm weight: find its data through the parser, poison a copy
    struct g4_safetensors st = {0};
    assert_int_equal(g4_safetensors_parse(&st, (const uint8_t *)ck, n, 0, "e2b"), G4_OK);
    const struct g4_tensor *t = g4_safetensors_find(&st, "model.norm.weight");
    assert_non_null(t);
    size_t off = (size_t)((const char *)t->data - ck);
    g4_safetensors_free(&st);
    float nan = NAN;
    memcpy(ck + off + 4 * 3, &nan, 4);
    dir = make_dir(NULL, NULL, ck, n);
    expect_load_error(dir, G4_ERR_FORMAT, "model.norm.weight has a non-finite value at [3]");
    g4_rm_rf(dir);
    free(ck);
    // a text-model tensor in a dtype the engine does not compute with (I32: same byte size)
    ck = g4_read_file(g4_src_path("tests/golden/e2b/model.safetensors"), &n);
    const char *key = "\"model.norm.weight\":{\"dtype\":\"F32\"";
    char *hdr = memmem(ck, n < 100000 ? n : 100000, key, strlen(key));
    assert_non_null(hdr);
    memcpy(hdr + strlen(key) - 4, "I32", 3);
    dir = make_dir(NULL, NULL, ck, n);
    expect_load_error(dir, G4_ERR_UNSUPPORTED, "model.norm.weight has dtype I32");
    g4_rm_rf(dir);
    free(ck);
    // a directory with a config but no weights
    dir = g4_tmpdir("noweights");
    char path[4200];
    snprintf(path, sizeof path, "%s/config.json", dir);
    size_t cn;
    char *cfg = g4_read_file(g4_src_path("tests/golden/e2b/config.json"), &cn);
    assert_int_equal(g4_write_file(path, cfg, cn), 0);
    free(cfg);
    expect_load_error(dir, G4_ERR_IO, dir);
    g4_rm_rf(dir);
}

// Puts something that is not a readable regular file at dir/name (removing what is there), or
// one that is but holds no checkpoint file: /proc/self/maps (size 0, yet text to read) and a
// sparse file of 17 MB (above config.json's 16 MB limit). /dev/zero would never end.
enum unreadable {
    AS_DIRECTORY, AS_FIFO, AS_SOCKET, AS_DEV_ZERO, AS_PROC_MEM, AS_PROC_MAPS, AS_HUGE
};
static void make_unreadable(const char *dir, const char *name, enum unreadable how) {
    char path[4200];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    unlink(path);
    switch (how) {
    case AS_DIRECTORY: assert_int_equal(mkdir(path, 0700), 0); break;
    case AS_FIFO: assert_int_equal(mkfifo(path, 0600), 0); break; // open() would wait for a writer
    case AS_SOCKET: {
        struct sockaddr_un sa = {.sun_family = AF_UNIX};
        assert_true(strlen(path) < sizeof sa.sun_path);
        strcpy(sa.sun_path, path);
        int fd = socket(AF_UNIX, SOCK_STREAM, 0);
        assert_true(fd >= 0);
        assert_int_equal(bind(fd, (struct sockaddr *)&sa, sizeof sa), 0);
        close(fd); // the socket file stays; open() on it fails with ENXIO
        break;
    }
    case AS_PROC_MEM: // a regular file of size 0 whose first bytes cannot be read (EIO)
        assert_int_equal(symlink("/proc/self/mem", path), 0);
        break;
    case AS_DEV_ZERO: assert_int_equal(symlink("/dev/zero", path), 0); break; // endless
    case AS_PROC_MAPS: assert_int_equal(symlink("/proc/self/maps", path), 0); break;
    case AS_HUGE: {
        FILE *f = fopen(path, "wb");
        assert_non_null(f);
        assert_int_equal(ftruncate(fileno(f), 17 << 20), 0);
        fclose(f);
        break;
    }
    }
}

// A directory, FIFO, socket or /proc file where config.json, model.safetensors or
// tokenizer.json should be: each fails cleanly (and fast: nothing waits on the FIFO), naming the
// file. These work as root too, unlike a chmod (see test_unreadable_permission).
static void test_unreadable_files(void **state) {
    (void)state;
    static const struct {
        const char *name;
        enum unreadable how;
        g4_status st;
        const char *msg;
    } cases[] = {
        {"config.json", AS_DIRECTORY, G4_ERR_IO, "config.json: not a regular file (a directory)"},
        {"config.json", AS_FIFO, G4_ERR_IO, "config.json: not a regular file (a FIFO)"},
        {"config.json", AS_SOCKET, G4_ERR_IO, "config.json: No such device or address"},
        {"config.json", AS_PROC_MEM, G4_ERR_IO, "config.json: read: Input/output error"},
        {"model.safetensors", AS_DIRECTORY, G4_ERR_IO,
         "model.safetensors: not a regular file (a directory)"},
        {"model.safetensors", AS_FIFO, G4_ERR_IO, "model.safetensors: not a regular file (a FIFO)"},
        {"model.safetensors", AS_SOCKET, G4_ERR_IO, "model.safetensors: No such device or address"},
        {"model.safetensors", AS_PROC_MEM, G4_ERR_FORMAT, "model.safetensors: file is 0 bytes"},
        {"tokenizer.json", AS_DIRECTORY, G4_ERR_IO,
         "tokenizer.json: not a regular file (a directory)"},
        {"tokenizer.json", AS_FIFO, G4_ERR_IO, "tokenizer.json: not a regular file (a FIFO)"},
        {"tokenizer.json", AS_SOCKET, G4_ERR_IO, "tokenizer.json: No such device or address"},
        {"tokenizer.json", AS_DEV_ZERO, G4_ERR_IO,
         "tokenizer.json: not a regular file (a character device)"},
        {"tokenizer.json", AS_PROC_MEM, G4_ERR_IO, "tokenizer.json: read: Input/output error"},
        // its text parses as a number ("not an object") or not at all ("not valid JSON")
        {"tokenizer.json", AS_PROC_MAPS, G4_ERR_FORMAT, "tokenizer.json: not "},
        {"config.json", AS_HUGE, G4_ERR_FORMAT, "config.json: larger than 16777216 bytes"},
    };
    for (size_t i = 0; i < G4_COUNT(cases); i++) {
        const char *dir = make_dir(NULL, NULL, NULL, 0);
        make_unreadable(dir, cases[i].name, cases[i].how);
        static const char *const what[] = {"a directory",     "a FIFO",         "a socket",
                                           "/dev/zero",       "/proc/self/mem", "/proc/self/maps",
                                           "a sparse 17 MB file"};
        printf("%s as %s ", cases[i].name, what[cases[i].how]);
        expect_load_error(dir, cases[i].st, cases[i].msg);
        g4_rm_rf(dir);
    }
    // config.json a dangling symlink: missing, with the hint
    const char *dir = make_dir(NULL, NULL, NULL, 0);
    char path[4200];
    snprintf(path, sizeof path, "%s/config.json", dir);
    assert_int_equal(unlink(path), 0);
    assert_int_equal(symlink("/nonexistent/g4/config.json", path), 0);
    expect_load_error(dir, G4_ERR_IO, "config.json: no such file (is this a model directory?)");
    g4_rm_rf(dir);
}

// chmod 000: root reads the file anyway, so as root this test is skipped, and says so.
static void test_unreadable_permission(void **state) {
    (void)state;
    if (geteuid() == 0) {
        printf("running as root: chmod 000 does not stop reads; skipped\n");
        skip();
    }
    static const char *const names[] = {"config.json", "model.safetensors"};
    for (size_t i = 0; i < G4_COUNT(names); i++) {
        const char *dir = make_dir(NULL, NULL, "x", 1); // a real file (not the symlink) to chmod
        char path[4200], msg[64];
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        assert_int_equal(chmod(path, 0), 0);
        snprintf(msg, sizeof msg, "%s: Permission denied", names[i]);
        expect_load_error(dir, G4_ERR_IO, msg);
        g4_rm_rf(dir);
    }
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_config_mismatch),
        cmocka_unit_test(test_gemma3_as_gemma4),
        cmocka_unit_test(test_bad_checkpoint_files),
        cmocka_unit_test(test_unreadable_files),
        cmocka_unit_test(test_unreadable_permission),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
