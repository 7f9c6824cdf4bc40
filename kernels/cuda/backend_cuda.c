// g4_backend_cuda: the C bridge between core/ (struct g4_model, struct g4_session, which C++
// cannot include) and the C++ CUDA engine (kernels/cuda/engine.h). It only unpacks fields.
#include "engine.h"
#include "session.h"

static g4_status cuda_model_init(struct g4_model *m) {
    struct g4_cuda_model *cm = NULL;
    G4_TRY(g4_cuda_model_init(&cm, &m->cfg, &m->w, m->device_index));
    m->device_state = cm;
    return G4_OK;
}

static void cuda_model_free(struct g4_model *m) {
    g4_cuda_model_free(m->device_state);
    m->device_state = NULL;
}

static g4_status cuda_session_init(struct g4_session *s) {
    struct g4_cuda_session *cs = NULL;
    G4_TRY(g4_cuda_session_init(&cs, s->model->device_state, s->n_ctx, s->n_batch));
    s->backend_state = cs;
    return G4_OK;
}

static void cuda_session_free(struct g4_session *s) {
    g4_cuda_session_free(s->backend_state);
    s->backend_state = NULL;
}

static g4_status cuda_forward(struct g4_session *s, const int32_t *tokens, int n, float *logits,
                              bool all_logits) {
    return g4_cuda_forward(s->backend_state, tokens, n, s->n_past, logits, all_logits,
                           s->bf16 ? G4_CUDA_BF16 : G4_CUDA_FP32);
}

static g4_status cuda_forward_greedy(struct g4_session *s, const int32_t *tokens, int n,
                                     int32_t *next, int32_t *nonfinite) {
    return g4_cuda_forward_greedy(s->backend_state, tokens, n, s->n_past,
                                  s->bf16 ? G4_CUDA_BF16 : G4_CUDA_FP32, next, nonfinite);
}

static g4_status cuda_fetch_logits(struct g4_session *s, float *logits) {
    return g4_cuda_fetch_logits(s->backend_state, logits);
}

static size_t cuda_kv_bytes(const struct g4_session *s) {
    return g4_cuda_session_kv_bytes(s->backend_state);
}

const struct g4_backend g4_backend_cuda = {
    .name = "cuda",
    .n_batch = 512,
    .model_init = cuda_model_init,
    .model_free = cuda_model_free,
    .session_init = cuda_session_init,
    .session_free = cuda_session_free,
    .forward = cuda_forward,
    .kv_bytes = cuda_kv_bytes,
    .forward_greedy = cuda_forward_greedy,
    .fetch_logits = cuda_fetch_logits,
};
