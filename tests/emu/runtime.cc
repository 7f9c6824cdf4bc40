// tests/emu: the runtime of the CPU execution harness for kernels/cuda (test infrastructure, not
// a product feature; tests/emu/README.md). One emulated device:
// - memory: host allocations registered as device memory, filled with 0xFF bytes (NaN in f32,
//   f16 and bf16; -1 in integers) when allocated, inside a capacity (G4EMU_DEVICE_MEMORY);
//   copies and memsets check that their device side lies inside one allocation and that the
//   direction matches the pointers;
// - streams: every asynchronous operation (kernel, copy, memset, cuBLAS call, event) joins one
//   queue in submission order and runs when the host synchronizes (a stream or event sync, a
//   blocking copy, cudaFree, ...), so a host that reads results without synchronizing sees stale
//   or poisoned data, as it would on a GPU; pageable host sources are staged at the call,
//   pinned ones are read when the copy runs;
// - kernels: each CUDA thread is a fiber with its own stack; a block's threads run
//   cooperatively, switching only at __syncthreads and warp collectives, in a seeded random
//   order (G4EMU_SEED), and the blocks of a grid run one after another in a seeded random
//   order; what a GPU refuses at launch is a launch error (cudaGetLastError), what it leaves
//   undefined is a fault: reported on stderr, sticky (every later call returns it, as after a
//   device fault), and the process fails at exit unless the fault was expected;
// - cuBLAS: arguments validated as the cuBLAS documentation states, then a reference GEMM;
// - device math: see dev_math1.
#include <atomic>
#include <chrono>
#include <cstdarg>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include <math.h>
#include <sys/mman.h>
#include <unistd.h>

#include "cublas_v2.h"
#include "cuda_bf16.h"
#include "cuda_fp16.h"
#include "cuda_runtime.h"
// the device math macros of g4emu_device.h must not rename the libm calls below
#undef expf
#undef exp2f
#undef exp10f
#undef expm1f
#undef logf
#undef log2f
#undef log10f
#undef log1pf
#undef sinf
#undef cosf
#undef tanf
#undef sincosf
#undef tanhf
#undef sinhf
#undef coshf
#undef asinf
#undef acosf
#undef atanf
#undef erff
#undef cbrtf
#undef rsqrtf
#undef powf
#undef atan2f
#undef hypotf
#undef exp
#undef log
#undef sin
#undef cos
#undef tanh
#undef pow

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/asan_interface.h>
#include <sanitizer/common_interface_defs.h>
#define G4EMU_ASAN 1
#else
#define G4EMU_ASAN 0
#endif

#ifndef G4EMU_DYNAMIC_SMEM_NAME
#define G4EMU_DYNAMIC_SMEM_NAME g4_smem // the name kernels/cuda/common.cuh declares
#endif

// ---- device constants (an H100 / H200: sm_90) ---------------------------------------------
enum : size_t {
    SMEM_DEFAULT = 48 * 1024,  // dynamic + static per block without cudaFuncSetAttribute
    SMEM_OPTIN = 232448,       // cudaDevAttrMaxSharedMemoryPerBlockOptin on sm_90
    CUBLAS_WORKSPACE = 4 << 20 // device memory a cuBLAS handle takes (its workspace)
};

uint3 threadIdx, blockIdx;
dim3 blockDim, gridDim;
thread_local __attribute__((aligned(16))) unsigned char G4EMU_DYNAMIC_SMEM_NAME[SMEM_OPTIN];

namespace {

// ---- configuration (environment) ----------------------------------------------------------
uint64_t env_u64(const char *name, uint64_t dflt) {
    const char *s = getenv(name);
    if (!s || !*s) return dflt;
    char *end = nullptr;
    double v = strtod(s, &end);
    if (end && (*end == 'k' || *end == 'K')) v *= 1024.0;
    if (end && (*end == 'm' || *end == 'M')) v *= 1024.0 * 1024.0;
    if (end && (*end == 'g' || *end == 'G')) v *= 1024.0 * 1024.0 * 1024.0;
    return (uint64_t)v;
}

struct config {
    uint64_t seed = env_u64("G4EMU_SEED", 1);
    size_t capacity = (size_t)env_u64("G4EMU_DEVICE_MEMORY", (uint64_t)1 << 30);
    int devices = (int)env_u64("G4EMU_DEVICES", 1);
    int sm_count = (int)env_u64("G4EMU_SM_COUNT", 132);
    bool abort_on_fault = env_u64("G4EMU_ABORT", 0) != 0;
    double ulp_scale = (double)env_u64("G4EMU_MATH_ULP", 1); // 0: exact device math
    size_t stack_bytes = (size_t)env_u64("G4EMU_STACK", G4EMU_ASAN ? 1 << 20 : 256 << 10);
};
config &cfg() {
    static config c;
    return c;
}

// ---- global device state (one lock: API calls and kernel execution are serialized) --------
std::recursive_mutex mu;
typedef std::lock_guard<std::recursive_mutex> guard;

struct allocation {
    size_t bytes;
    bool pinned_host; // cudaMallocHost: host memory, not device
};
std::map<uintptr_t, allocation> allocs; // by start address
size_t device_used = 0;
cudaError_t sticky = cudaSuccess; // a fault poisons the context, as on a GPU
thread_local cudaError_t last_error = cudaSuccess;
thread_local int current_device = 0;
thread_local bool in_device = false;
std::deque<std::function<void()>> queue; // every stream's work, in submission order
std::set<const void *> streams, events, handles;
std::map<const void *, int> max_dynamic_smem; // cudaFuncSetAttribute
int faults = 0, unexpected_faults = 0;
std::string fail_suffix; // g4emu_fail_launches
int fail_count = 0;
bool faults_expected = false;

cudaError_t fail(cudaError_t e) {
    if (e != cudaSuccess) last_error = e;
    return e;
}

void note(const char *fmt, ...) __attribute__((format(printf, 1, 2)));
void note(const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fputs("g4emu: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

void exit_check() {
    if (unexpected_faults == 0) return;
    fflush(stdout);
    fprintf(stderr, "g4emu: %d fault(s) reported above; failing the process\n", unexpected_faults);
    fflush(stderr);
    _exit(3);
}

// Records a fault: a message, a sticky error, and a failed process at exit.
void record_fault(cudaError_t code, const std::string &msg) {
    fflush(stdout);
    fprintf(stderr, "g4emu FAULT (%s): %s\n", cudaGetErrorName(code), msg.c_str());
    fflush(stderr);
    if (cfg().abort_on_fault) abort();
    faults++;
    if (!faults_expected) {
        if (unexpected_faults++ == 0) atexit(exit_check);
    }
    if (sticky == cudaSuccess) sticky = code;
}

std::string fmt(const char *f, ...) __attribute__((format(printf, 1, 2)));
std::string fmt(const char *f, ...) {
    char buf[2048];
    va_list ap;
    va_start(ap, f);
    vsnprintf(buf, sizeof buf, f, ap);
    va_end(ap);
    return buf;
}

// The allocation holding [p, p + n), or null.
const allocation *find_alloc(const void *p, size_t n, uintptr_t *start = nullptr) {
    const uintptr_t a = (uintptr_t)p;
    auto it = allocs.upper_bound(a);
    if (it == allocs.begin()) return nullptr;
    --it;
    if (a < it->first || a + n > it->first + it->second.bytes || a + n < a) return nullptr;
    if (start) *start = it->first;
    return &it->second;
}
bool is_device(const void *p, size_t n) {
    const allocation *al = find_alloc(p, n ? n : 1);
    return al && !al->pinned_host;
}
bool touches_device(const void *p, size_t n) { // any byte of [p, p + n) in a device allocation
    const uintptr_t a = (uintptr_t)p;
    auto it = allocs.upper_bound(a + (n ? n : 1) - 1);
    if (it == allocs.begin()) return false;
    --it;
    return !it->second.pinned_host && it->first + it->second.bytes > a;
}
bool is_pinned(const void *p) {
    const allocation *al = find_alloc(p, 1);
    return al && al->pinned_host;
}

// ---- stream capture (CUDA graphs) -------------------------------------------------------------
// A capturing stream records what it is given into its capture instead of the queue; a graph
// replays the recorded operations with the arguments they were recorded with (kernel parameters
// by value, copy and memset pointers and sizes), reading device and pinned memory as they are
// when the replay runs.
struct capture {
    std::vector<std::function<void()>> ops;
    cudaStreamCaptureMode mode;
    std::thread::id thread; // the thread that began it
    bool invalidated;
    cudaError_t why;        // what invalidated it (for the note at cudaStreamEndCapture)
};
} // namespace

struct CUstream_st {
    unsigned flags;
    std::unique_ptr<capture> cap; // non-null while capturing
};
struct CUgraph_st {
    std::vector<std::function<void()>> ops;
};
struct CUgraphExec_st {
    std::shared_ptr<const std::vector<std::function<void()>>> ops;
};

namespace {
std::set<const void *> graphs, graph_execs;
unsigned long long graph_launches = 0;
unsigned long long kernel_runs = 0; // kernels and cuBLAS GEMMs executed (g4emu_kernel_runs)

capture *capturing(cudaStream_t s) {
    if (s == nullptr || s == cudaStreamLegacy || s == cudaStreamPerThread || !streams.count(s))
        return nullptr;
    return s->cap.get();
}

void invalidate(capture *c, cudaError_t why) {
    if (!c->invalidated) c->ops.clear();
    c->invalidated = true;
    if (c->why == cudaSuccess) c->why = why;
}

// A "potentially unsafe" call (cudaMalloc, cudaFree, a synchronous copy, a device sync: work
// that capture cannot observe) is prohibited while this thread has a capture not begun in
// relaxed mode, or any thread has one begun in global mode. Returns the error it gets and
// invalidates the captures that prohibit it; cudaSuccess when allowed.
cudaError_t unsafe_call(const char *what) {
    const std::thread::id me = std::this_thread::get_id();
    cudaError_t e = cudaSuccess;
    for (const void *p : streams) {
        capture *c = ((cudaStream_t)p)->cap.get();
        if (!c) continue;
        const bool mine = c->thread == me;
        if ((mine && c->mode != cudaStreamCaptureModeRelaxed) ||
            (!mine && c->mode == cudaStreamCaptureModeGlobal)) {
            invalidate(c, cudaErrorStreamCaptureUnsupported);
            e = cudaErrorStreamCaptureUnsupported;
        }
    }
    if (e != cudaSuccess) note("%s during stream capture: %s (the capture is invalidated)", what,
                               cudaGetErrorName(e));
    return e;
}

// Work on the legacy default stream waits for every blocking stream: while one of them
// captures, that is an implicit dependency capture cannot express.
cudaError_t legacy_conflict(cudaStream_t s, const char *what) {
    if (s != nullptr && s != cudaStreamLegacy) return cudaSuccess;
    cudaError_t e = cudaSuccess;
    for (const void *p : streams) {
        cudaStream_t st = (cudaStream_t)p;
        if (st->cap && !(st->flags & cudaStreamNonBlocking)) {
            invalidate(st->cap.get(), cudaErrorStreamCaptureImplicit);
            e = cudaErrorStreamCaptureImplicit;
        }
    }
    if (e != cudaSuccess) note("%s on the legacy stream while a blocking stream captures: %s", what,
                               cudaGetErrorName(e));
    return e;
}

// Queues an operation on stream s, or records it into s's capture. An invalidated capture
// takes nothing more: cudaErrorStreamCaptureInvalidated.
cudaError_t enqueue(cudaStream_t s, std::function<void()> op) {
    if (capture *c = capturing(s)) {
        if (c->invalidated) return cudaErrorStreamCaptureInvalidated;
        c->ops.push_back(std::move(op));
        return cudaSuccess;
    }
    const cudaError_t e = legacy_conflict(s, "an operation");
    if (e != cudaSuccess) return e;
    queue.push_back(std::move(op));
    return cudaSuccess;
}

void flush() {
    while (!queue.empty()) {
        std::function<void()> op = std::move(queue.front());
        queue.pop_front();
        if (sticky == cudaSuccess) op();
    }
}

bool valid_stream(cudaStream_t s) {
    return s == nullptr || s == cudaStreamLegacy || s == cudaStreamPerThread || streams.count(s);
}

// ---- fibers ---------------------------------------------------------------------------------
struct fiber {
    void *sp;
    char *stack;
    size_t stack_bytes;
    void *asan_fake;
    unsigned tid; // linear thread index in the block
    uint3 idx;
    enum { RUNNABLE, BARRIER, WARP, DONE } state;
    const char *file;
    int line;
    // the warp collective it waits at
    int op;
    unsigned mask;
    uint64_t val;
    int arg, width;
    uint64_t out;
};

#if defined(__x86_64__)
extern "C" void g4emu_switch(void **save_sp, void *to_sp);
extern "C" void g4emu_fiber_start();
// Saves the callee-saved registers on the current stack, stores the stack pointer in *save_sp
// and resumes the context saved at to_sp (MXCSR and the x87 control word are never changed by
// kernels, so they are not switched).
asm(R"(
    .text
    .globl g4emu_switch
    .type g4emu_switch, @function
g4emu_switch:
    pushq %rbp
    pushq %rbx
    pushq %r12
    pushq %r13
    pushq %r14
    pushq %r15
    movq %rsp, (%rdi)
    movq %rsi, %rsp
    popq %r15
    popq %r14
    popq %r13
    popq %r12
    popq %rbx
    popq %rbp
    ret
    .size g4emu_switch, .-g4emu_switch
    .globl g4emu_fiber_start
    .type g4emu_fiber_start, @function
g4emu_fiber_start:
    movq %r12, %rdi
    callq *%r13
    ud2
    .size g4emu_fiber_start, .-g4emu_fiber_start
)");
#else
#error "tests/emu: the fiber switch is written for x86-64"
#endif

void *sched_sp;
#if G4EMU_ASAN
void *sched_fake;
const void *sched_bottom;
size_t sched_size;
#endif
fiber *cur;
std::vector<fiber> fibers;
std::vector<std::pair<char *, size_t>> stacks; // mmap'd, a guard page below each
bool stacks_dirty = false;                     // a fault abandoned fibers mid-run

struct launch_rec {
    dim3 grid, block;
    size_t smem;
    const char *file;
    int line;
    std::shared_ptr<const g4emu::task> task;
};
// A warp collective some lanes of a warp wait at (lanes of disjoint masks may run separate ones).
struct warp_group {
    int kind;
    unsigned mask, arrived;
    const char *file;
    int line;
};
struct warp_state {
    unsigned done, barrier; // lanes that exited / wait at __syncthreads
    int n_groups;
    warp_group groups[32];
};
struct exec_state {
    const launch_rec *L;
    unsigned n; // threads per block
    std::vector<unsigned> runq;
    warp_state warps[32];
    unsigned n_barrier; // threads at __syncthreads
    bool fault;
    uint64_t rng;
} ex;

bool same_site(const char *f1, int l1, const char *f2, int l2) {
    return l1 == l2 && (f1 == f2 || strcmp(f1, f2) == 0);
}

uint64_t splitmix(uint64_t *s) {
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

std::string where() { // the running launch, block and thread
    const launch_rec *L = ex.L;
    std::string s = fmt("kernel launched at %s:%d, grid (%u,%u,%u) block (%u,%u,%u) dynamic smem %zu",
                        L->file, L->line, L->grid.x, L->grid.y, L->grid.z, L->block.x,
                        L->block.y, L->block.z, L->smem);
    s += fmt("; in block (%u,%u,%u)", blockIdx.x, blockIdx.y, blockIdx.z);
    if (cur) s += fmt(" thread (%u,%u,%u) (warp %u lane %u)", cur->idx.x, cur->idx.y, cur->idx.z,
                      cur->tid >> 5, cur->tid & 31);
    return s;
}

void yield(bool exiting) {
    fiber *f = cur;
#if G4EMU_ASAN
    __sanitizer_start_switch_fiber(exiting ? nullptr : &f->asan_fake, sched_bottom, sched_size);
#else
    (void)exiting;
#endif
    g4emu_switch(&f->sp, sched_sp);
#if G4EMU_ASAN
    __sanitizer_finish_switch_fiber(f->asan_fake, &sched_bottom, &sched_size);
#endif
}

// The faulting fiber never resumes, so nothing it holds on its stack is destroyed: the message
// is formatted into a buffer, and every string is gone before the switch.
[[noreturn]] void fiber_faultf(cudaError_t code, const char *f, ...) __attribute__((format(printf, 2, 3)));
[[noreturn]] void fiber_faultf(cudaError_t code, const char *f, ...) {
    {
        char buf[2048];
        va_list ap;
        va_start(ap, f);
        vsnprintf(buf, sizeof buf, f, ap);
        va_end(ap);
        record_fault(code, std::string(buf) + "\n  " + where());
    }
    ex.fault = true;
    stacks_dirty = true;
    yield(true);
    __builtin_unreachable();
}

void fiber_entry(fiber *f) {
#if G4EMU_ASAN
    __sanitizer_finish_switch_fiber(nullptr, &sched_bottom, &sched_size);
#endif
    ex.L->task->run();
    f->state = fiber::DONE;
    // A lane that leaves while its warp waits for it at a collective, or while the block
    // waits at a barrier, can never arrive: on a GPU a hang or undefined behaviour.
    warp_state &w = ex.warps[f->tid >> 5];
    const unsigned bit = 1u << (f->tid & 31);
    w.done |= bit;
    for (int i = 0; i < w.n_groups; i++)
        if (w.groups[i].mask & bit)
            fiber_faultf(cudaErrorLaunchFailure, "thread exits while lanes 0x%08x of its warp wait for it at the warp "
                            "collective at %s:%d (mask 0x%08x)", w.groups[i].arrived,
                            w.groups[i].file, w.groups[i].line, w.groups[i].mask);
    if (ex.n_barrier) {
        unsigned t = 0;
        while (fibers[t].state != fiber::BARRIER) t++;
        fiber_faultf(cudaErrorLaunchFailure, "thread exits while %u threads wait at __syncthreads at %s:%d: not every "
                        "thread of the block reaches that barrier", ex.n_barrier, fibers[t].file,
                        fibers[t].line);
    }
    yield(true);
    __builtin_unreachable();
}

void ensure_stacks(unsigned n) {
    const size_t page = (size_t)sysconf(_SC_PAGESIZE);
    const size_t bytes = (cfg().stack_bytes + page - 1) / page * page;
    while (stacks.size() < n) {
        char *m = (char *)mmap(nullptr, bytes + page, PROT_READ | PROT_WRITE,
                               MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
        if (m == MAP_FAILED) {
            note("cannot map a fiber stack of %zu bytes", bytes);
            abort();
        }
        mprotect(m, page, PROT_NONE); // stack overflow faults instead of corrupting memory
        stacks.push_back({m + page, bytes});
    }
    if (fibers.size() < n) fibers.resize(n);
}

void init_fiber(fiber *f, unsigned tid) {
    const dim3 b = ex.L->block;
    f->stack = stacks[tid].first;
    f->stack_bytes = stacks[tid].second;
    f->asan_fake = nullptr;
    f->tid = tid;
    f->idx = uint3{tid % b.x, tid / b.x % b.y, tid / (b.x * b.y)};
    f->state = fiber::RUNNABLE;
    f->file = "";
    f->line = 0;
    uintptr_t top = ((uintptr_t)f->stack + f->stack_bytes) & ~(uintptr_t)15;
    // 7 slots popped by g4emu_switch; the start routine then runs with rsp 16-byte aligned
    uint64_t *sp = (uint64_t *)(top - 56);
    sp[0] = 0;                                  // r15
    sp[1] = 0;                                  // r14
    sp[2] = (uint64_t)(uintptr_t)&fiber_entry;  // r13: the entry
    sp[3] = (uint64_t)(uintptr_t)f;             // r12: its argument
    sp[4] = 0;                                  // rbx
    sp[5] = 0;                                  // rbp
    sp[6] = (uint64_t)(uintptr_t)&g4emu_fiber_start;
    f->sp = sp;
}

void resume(fiber *f) {
    cur = f;
    threadIdx = f->idx;
    in_device = true;
#if G4EMU_ASAN
    __sanitizer_start_switch_fiber(&sched_fake, f->stack, f->stack_bytes);
#endif
    g4emu_switch(&sched_sp, f->sp);
#if G4EMU_ASAN
    __sanitizer_finish_switch_fiber(sched_fake, nullptr, nullptr);
#endif
    in_device = false;
    cur = nullptr;
}

void sched_fault(cudaError_t code, const std::string &msg) {
    record_fault(code, msg + "\n  " + where());
    ex.fault = true;
    stacks_dirty = true;
}

std::string thread_list(const std::vector<unsigned> &ts) {
    std::string s;
    for (size_t i = 0; i < ts.size() && i < 8; i++) s += fmt("%s%u", i ? ", " : "", ts[i]);
    if (ts.size() > 8) s += fmt(", ... (%zu threads)", ts.size());
    return s;
}

// Runs one block to completion; false after a fault.
bool run_block() {
    const unsigned n = ex.n;
    ex.runq.clear();
    for (unsigned w = 0; w < (n + 31) / 32; w++) ex.warps[w].done = ex.warps[w].barrier = 0, ex.warps[w].n_groups = 0;
    ex.n_barrier = 0;
    for (unsigned t = 0; t < n; t++) {
        init_fiber(&fibers[t], t);
        ex.runq.push_back(t);
    }
    for (;;) {
        while (!ex.runq.empty()) {
            const size_t i = (size_t)(((unsigned __int128)splitmix(&ex.rng) * ex.runq.size()) >> 64);
            const unsigned t = ex.runq[i];
            ex.runq[i] = ex.runq.back();
            ex.runq.pop_back();
            resume(&fibers[t]);
            if (ex.fault) return false;
        }
        std::vector<unsigned> done, at_barrier, at_warp;
        for (unsigned t = 0; t < n; t++) {
            const fiber &f = fibers[t];
            if (f.state == fiber::DONE) done.push_back(t);
            else if (f.state == fiber::BARRIER) at_barrier.push_back(t);
            else if (f.state == fiber::WARP) at_warp.push_back(t);
        }
        if (done.size() == n) return true;
        if (!at_warp.empty()) {
            const fiber &f = fibers[at_warp[0]];
            sched_fault(cudaErrorLaunchFailure,
                        fmt("deadlock: thread %u waits at the warp collective at %s:%d (mask "
                            "0x%08x) for lanes that cannot arrive; threads at barriers: %s",
                            f.tid, f.file, f.line, f.mask, thread_list(at_barrier).c_str()));
            return false;
        }
        if (!done.empty()) {
            const fiber &f = fibers[at_barrier[0]];
            sched_fault(cudaErrorLaunchFailure,
                        fmt("__syncthreads at %s:%d reached by %zu of %u threads; threads %s "
                            "exited without reaching it (a barrier in divergent code)",
                            f.file, f.line, at_barrier.size(), n, thread_list(done).c_str()));
            return false;
        }
        const fiber &f0 = fibers[0];
        for (unsigned t = 1; t < n; t++) {
            const fiber &f = fibers[t];
            if (!same_site(f.file, f.line, f0.file, f0.line)) {
                sched_fault(cudaErrorLaunchFailure,
                            fmt("threads wait at different __syncthreads: thread 0 at %s:%d, "
                                "thread %u at %s:%d (a barrier in divergent code)",
                                f0.file, f0.line, t, f.file, f.line));
                return false;
            }
        }
        for (unsigned t = 0; t < n; t++) {
            fibers[t].state = fiber::RUNNABLE;
            ex.runq.push_back(t);
        }
        for (unsigned w = 0; w < (n + 31) / 32; w++) ex.warps[w].barrier = 0;
        ex.n_barrier = 0;
    }
}

void run_launch(const launch_rec &L) {
    kernel_runs++;
    ex.L = &L;
    ex.n = L.block.x * L.block.y * L.block.z;
    ex.fault = false;
    static uint64_t launch_counter = 0;
    ex.rng = cfg().seed * 0x2545F4914F6CDD1Dull + ++launch_counter;
    ensure_stacks(ex.n);
#if G4EMU_ASAN
    if (stacks_dirty)
        for (auto &s : stacks) ASAN_UNPOISON_MEMORY_REGION(s.first, s.second);
#endif
    stacks_dirty = false;
    gridDim = L.grid;
    blockDim = L.block;
    const uint64_t gx = L.grid.x, gy = L.grid.y, gz = L.grid.z, nb = gx * gy * gz;
    std::vector<uint64_t> order;
    if (nb <= (1u << 22)) { // blocks in a seeded random order (no order is promised)
        order.resize(nb);
        for (uint64_t i = 0; i < nb; i++) order[i] = i;
        for (uint64_t i = nb; i > 1; i--) std::swap(order[i - 1], order[splitmix(&ex.rng) % i]);
    }
#if G4EMU_ASAN
    ASAN_POISON_MEMORY_REGION(G4EMU_DYNAMIC_SMEM_NAME + L.smem, SMEM_OPTIN - L.smem);
#endif
    for (uint64_t i = 0; i < nb && !ex.fault; i++) {
        const uint64_t b = order.empty() ? i : order[i];
        blockIdx = uint3{(unsigned)(b % gx), (unsigned)(b / gx % gy), (unsigned)(b / (gx * gy))};
        memset(G4EMU_DYNAMIC_SMEM_NAME, 0xFF, L.smem); // shared memory starts undefined: NaN
        run_block();
    }
#if G4EMU_ASAN
    ASAN_UNPOISON_MEMORY_REGION(G4EMU_DYNAMIC_SMEM_NAME, SMEM_OPTIN);
#endif
    ex.L = nullptr;
}

// ---- device math ----------------------------------------------------------------------------
struct math_def {
    double (*d1)(double);
    double (*d2)(double, double);
    int max_ulp; // CUDA C++ Programming Guide, maximum ulp error (full range)
};
double d_rsqrt(double x) { return 1.0 / sqrt(x); }
double d_exp10(double x) { return ::pow(10.0, x); }
double d_div(double x, double y) { return x / y; }
const math_def math_table[g4emu::F_COUNT] = {
    {::exp, nullptr, 2},   {::exp2, nullptr, 2},  {d_exp10, nullptr, 2}, {::expm1, nullptr, 1},
    {::log, nullptr, 1},   {::log2, nullptr, 1},  {::log10, nullptr, 2}, {::log1p, nullptr, 1},
    {::sin, nullptr, 2},   {::cos, nullptr, 2},   {::tan, nullptr, 4},   {::tanh, nullptr, 2},
    {::sinh, nullptr, 3},  {::cosh, nullptr, 2},  {::asin, nullptr, 2},  {::acos, nullptr, 2},
    {::atan, nullptr, 2},  {::erf, nullptr, 2},   {::cbrt, nullptr, 1},  {d_rsqrt, nullptr, 2},
    {::exp, nullptr, 2},   {::log, nullptr, 3},   {::sin, nullptr, 3},   {::cos, nullptr, 3},
    {nullptr, ::pow, 4},   {nullptr, ::atan2, 3}, {nullptr, ::hypot, 3}, {nullptr, ::pow, 8},
    {nullptr, d_div, 2},
};

float step_ulps(float v, int k) {
    uint32_t u;
    memcpy(&u, &v, 4);
    const uint32_t sign = u & 0x80000000u;
    int64_t mag = (int64_t)(u & 0x7fffffffu) + k;
    if (mag < 1) mag = 1;
    if (mag > 0x7f7fffff) mag = 0x7f7fffff;
    u = sign | (uint32_t)mag;
    memcpy(&v, &u, 4);
    return v;
}

float perturb(int fn, double exact, float x, float y) {
    const float base = (float)exact;
    if (!in_device || cfg().ulp_scale <= 0 || !std::isfinite(base) || base == 0.0f ||
        (double)base == exact)
        return base;
    int max_ulp = math_table[fn].max_ulp;
    if (fn == g4emu::F_FAST_EXP) max_ulp = 2 + (int)fminf(floorf(fabsf(1.173f * x)), 126.0f);
    max_ulp = (int)(max_ulp * cfg().ulp_scale);
    if (max_ulp < 1) return base;
    uint32_t bx, by;
    memcpy(&bx, &x, 4);
    memcpy(&by, &y, 4);
    uint64_t s = cfg().seed ^ ((uint64_t)(fn + 1) << 56) ^ ((uint64_t)by << 32) ^ bx;
    const int k = (int)(splitmix(&s) % (uint64_t)(2 * max_ulp + 1)) - max_ulp;
    return step_ulps(base, k);
}

// ---- cuBLAS -----------------------------------------------------------------------------------
struct blas_handle {
    cudaStream_t stream;
    cublasPointerMode_t pointer_mode;
};

size_t type_size(cudaDataType t) {
    switch (t) {
    case CUDA_R_16F:
    case CUDA_R_16BF: return 2;
    case CUDA_R_32F:
    case CUDA_R_32I: return 4;
    case CUDA_R_64F: return 8;
    case CUDA_R_8I: return 1;
    }
    return 0;
}
const char *type_name(cudaDataType t) {
    switch (t) {
    case CUDA_R_16F: return "CUDA_R_16F";
    case CUDA_R_16BF: return "CUDA_R_16BF";
    case CUDA_R_32F: return "CUDA_R_32F";
    case CUDA_R_32I: return "CUDA_R_32I";
    case CUDA_R_64F: return "CUDA_R_64F";
    case CUDA_R_8I: return "CUDA_R_8I";
    }
    return "unknown cudaDataType";
}
double load_elem(const void *p, size_t i, cudaDataType t) {
    switch (t) {
    case CUDA_R_16F: return __half2float(((const __half *)p)[i]);
    case CUDA_R_16BF: return __bfloat162float(((const __nv_bfloat16 *)p)[i]);
    case CUDA_R_32F: return ((const float *)p)[i];
    case CUDA_R_64F: return ((const double *)p)[i];
    case CUDA_R_8I: return ((const int8_t *)p)[i];
    case CUDA_R_32I: return ((const int32_t *)p)[i];
    }
    return NAN;
}
void store_elem(void *p, size_t i, cudaDataType t, double v) {
    switch (t) {
    case CUDA_R_16F: ((__half *)p)[i] = __float2half_rn((float)v); break;
    case CUDA_R_16BF: ((__nv_bfloat16 *)p)[i] = __float2bfloat16_rn((float)v); break;
    case CUDA_R_32F: ((float *)p)[i] = (float)v; break;
    case CUDA_R_64F: ((double *)p)[i] = v; break;
    case CUDA_R_8I: ((int8_t *)p)[i] = (int8_t)v; break;
    case CUDA_R_32I: ((int32_t *)p)[i] = (int32_t)v; break;
    }
}

// (A, B, C) type combinations cublasGemmEx documents for a compute type; scale type out.
bool gemm_types_ok(cublasComputeType_t ct, cudaDataType a, cudaDataType b, cudaDataType c) {
    if (a != b) return false;
    switch (ct) {
    case CUBLAS_COMPUTE_32F:
        return (a == CUDA_R_16BF && (c == CUDA_R_16BF || c == CUDA_R_32F)) ||
               (a == CUDA_R_16F && (c == CUDA_R_16F || c == CUDA_R_32F)) ||
               (a == CUDA_R_8I && c == CUDA_R_32F) || (a == CUDA_R_32F && c == CUDA_R_32F);
    case CUBLAS_COMPUTE_32F_FAST_16F:
    case CUBLAS_COMPUTE_32F_FAST_16BF:
    case CUBLAS_COMPUTE_32F_FAST_TF32: return a == CUDA_R_32F && c == CUDA_R_32F;
    case CUBLAS_COMPUTE_16F: return a == CUDA_R_16F && c == CUDA_R_16F;
    case CUBLAS_COMPUTE_64F: return a == CUDA_R_64F && c == CUDA_R_64F;
    case CUBLAS_COMPUTE_32I: return a == CUDA_R_8I && c == CUDA_R_32I;
    }
    return false;
}

} // namespace

// ---- device side entry points ----------------------------------------------------------------
namespace g4emu {

void device_fault(const char *file, int line, const char *f, ...) {
    char buf[1024];
    va_list ap;
    va_start(ap, f);
    vsnprintf(buf, sizeof buf, f, ap);
    va_end(ap);
    if (!cur) {
        note("%s:%d: %s (outside a kernel)", file, line, buf);
        abort();
    }
    fiber_faultf(cudaErrorLaunchFailure, "%s:%d: %s", file, line, buf);
}

void syncthreads(const char *file, int line) {
    fiber *f = cur;
    if (!f) {
        note("%s:%d: __syncthreads outside a kernel", file, line);
        abort();
    }
    // A lane of this warp waiting at a collective that names this thread would wait forever.
    warp_state &w = ex.warps[f->tid >> 5];
    const unsigned bit = 1u << (f->tid & 31);
    for (int i = 0; i < w.n_groups; i++)
        if (w.groups[i].mask & bit)
            fiber_faultf(cudaErrorLaunchFailure, "%s:%d: __syncthreads while lanes 0x%08x wait for this lane at the "
                            "warp collective at %s:%d (mask 0x%08x): divergent code", file, line,
                            w.groups[i].arrived, w.groups[i].file, w.groups[i].line,
                            w.groups[i].mask);
    w.barrier |= bit;
    ex.n_barrier++;
    f->state = fiber::BARRIER;
    f->file = file;
    f->line = line;
    yield(false);
}

unsigned active_mask() {
    fiber *f = cur;
    if (!f) return 0;
    unsigned m = 0;
    const unsigned w0 = f->tid & ~31u;
    for (unsigned t = w0; t < w0 + 32 && t < ex.n; t++)
        if (fibers[t].state != fiber::DONE) m |= 1u << (t - w0);
    return m;
}

static const char *op_name(int kind) {
    static const char *names[] = {"__shfl_sync", "__shfl_up_sync", "__shfl_down_sync",
                                  "__shfl_xor_sync", "__syncwarp", "__ballot_sync",
                                  "__any_sync", "__all_sync"};
    return kind >= 0 && kind < 8 ? names[kind] : "warp collective";
}

uint64_t warp_op(int kind, unsigned mask, uint64_t value, int arg, int width, const char *file,
                 int line) {
    fiber *f = cur;
    if (!f) {
        note("%s:%d: %s outside a kernel", file, line, op_name(kind));
        abort();
    }
    const unsigned lane = f->tid & 31, w0 = f->tid & ~31u;
    const unsigned lanes = ex.n - w0 < 32 ? ex.n - w0 : 32;
    const unsigned exist = lanes == 32 ? ~0u : (1u << lanes) - 1;
    if (!(mask >> lane & 1))
        fiber_faultf(cudaErrorLaunchFailure, "%s:%d: %s with mask 0x%08x omits the calling lane %u", file, line,
                        op_name(kind), mask, lane);
    if (mask & ~exist)
        fiber_faultf(cudaErrorLaunchFailure, "%s:%d: %s mask 0x%08x names lanes that do not exist (this warp has %u "
                        "lanes: the block has %u threads)",
                        file, line, op_name(kind), mask, lanes, ex.n);
    if (width < 1 || width > 32 || (width & (width - 1)))
        fiber_faultf(cudaErrorLaunchFailure, "%s:%d: %s width %d is not a power of two in [1, 32]", file, line,
                        op_name(kind), width);
    warp_state &w = ex.warps[f->tid >> 5];
    if (mask & w.done)
        fiber_faultf(cudaErrorLaunchFailure, "%s:%d: %s mask 0x%08x names lane %d, which has exited", file, line,
                        op_name(kind), mask, __builtin_ctz(mask & w.done));
    if (mask & w.barrier) {
        const unsigned j = __builtin_ctz(mask & w.barrier);
        fiber_faultf(cudaErrorLaunchFailure, "%s:%d: %s mask 0x%08x names lane %u, which waits at __syncthreads at "
                        "%s:%d: divergent code", file, line, op_name(kind), mask, j,
                        fibers[w0 + j].file, fibers[w0 + j].line);
    }
    int gi = 0;
    while (gi < w.n_groups && !(w.groups[gi].mask & mask)) gi++;
    if (gi == w.n_groups) {
        w.groups[w.n_groups++] = warp_group{kind, mask, 0, file, line};
    } else {
        const warp_group &g = w.groups[gi];
        if (g.kind != kind || g.mask != mask || !same_site(g.file, g.line, file, line))
            fiber_faultf(cudaErrorLaunchFailure, "%s:%d: %s mask 0x%08x: lanes 0x%08x of the mask wait at another "
                            "collective, %s mask 0x%08x at %s:%d", file, line, op_name(kind),
                            mask, g.arrived, op_name(g.kind), g.mask, g.file, g.line);
    }
    w.groups[gi].arrived |= 1u << lane;
    f->state = fiber::WARP;
    f->op = kind;
    f->mask = mask;
    f->val = value;
    f->arg = arg;
    f->width = width;
    f->file = file;
    f->line = line;
    if (w.groups[gi].arrived != mask) {
        yield(false); // the last lane to arrive completes the collective for all
        return f->out;
    }
    w.groups[gi] = w.groups[--w.n_groups];
    // Everyone is here: compute every lane's result.
    unsigned ballot = 0;
    for (unsigned j = 0; j < lanes; j++)
        if ((mask >> j & 1) && fibers[w0 + j].val) ballot |= 1u << j;
    for (unsigned j = 0; j < lanes; j++) {
        if (!(mask >> j & 1)) continue;
        fiber &g = fibers[w0 + j];
        const unsigned seg = j & ~(unsigned)(width - 1);
        unsigned src = j;
        switch (kind) {
        case WARP_SHFL_IDX: src = seg + (unsigned)(((arg % width) + width) % width); break;
        case WARP_SHFL_UP: src = (j - seg) < (unsigned)arg ? j : j - (unsigned)arg; break;
        case WARP_SHFL_DOWN: src = (j - seg) + (unsigned)arg >= (unsigned)width ? j : j + (unsigned)arg; break;
        case WARP_SHFL_XOR:
            src = j ^ ((unsigned)arg & 31);
            if ((src & ~(unsigned)(width - 1)) > seg) src = j;
            break;
        default: break;
        }
        if (kind <= WARP_SHFL_XOR) {
            if (src >= 32 || !(mask >> src & 1)) {
                fiber_faultf(cudaErrorLaunchFailure, "%s:%d: %s: lane %u reads lane %u, which the mask 0x%08x does "
                                "not name (undefined on the GPU)", file, line, op_name(kind), j,
                                src, mask);
            }
            g.out = fibers[w0 + src].val;
        } else if (kind == WARP_BALLOT) {
            g.out = ballot;
        } else if (kind == WARP_ANY) {
            g.out = ballot != 0;
        } else if (kind == WARP_ALL) {
            g.out = ballot == (mask & exist);
        } else {
            g.out = 0;
        }
    }
    for (unsigned j = 0; j < lanes; j++) {
        if (!(mask >> j & 1)) continue;
        fiber &g = fibers[w0 + j];
        g.state = fiber::RUNNABLE;
        if (j != lane) ex.runq.push_back(w0 + j);
    }
    return f->out;
}

float dev_math1(int fn, float x) {
    if (!in_device) { // host code in a .cu file: the host's libm, as nvcc's host compiler gives
        switch (fn) {
        case F_EXP: return ::expf(x);
        case F_LOG: return ::logf(x);
        case F_SIN: return ::sinf(x);
        case F_COS: return ::cosf(x);
        case F_TANH: return ::tanhf(x);
        case F_RSQRT: return 1.0f / ::sqrtf(x);
        default: return (float)math_table[fn].d1((double)x);
        }
    }
    if (fn == F_FAST_DIV || !math_table[fn].d1) return NAN;
    return perturb(fn, math_table[fn].d1((double)x), x, 0.0f);
}

float dev_math2(int fn, float x, float y) {
    if (!in_device) {
        if (fn == F_POW) return ::powf(x, y);
        if (fn == F_ATAN2) return ::atan2f(x, y);
        if (fn == F_HYPOT) return ::hypotf(x, y);
        return (float)math_table[fn].d2((double)x, (double)y);
    }
    if (fn == F_FAST_DIV && fabsf(y) > 0x1p126f && std::isfinite(x)) return 0.0f; // documented
    return perturb(fn, math_table[fn].d2((double)x, (double)y), x, y);
}

// Doubles: CUDA's are within 1-2 ulp; the harness keeps them exact (documented).
double dev_math1d(int fn, double x) { return math_table[fn].d1 ? math_table[fn].d1(x) : NAN; }
double dev_math2d(int fn, double x, double y) {
    return math_table[fn].d2 ? math_table[fn].d2(x, y) : NAN;
}

void launch(const launch_config &c, const void *kernel, std::shared_ptr<const task> t) {
    guard g(mu);
    if (sticky != cudaSuccess) {
        fail(sticky);
        return;
    }
    const dim3 b = c.block, gr = c.grid;
    const uint64_t threads = (uint64_t)b.x * b.y * b.z;
    const char *why = nullptr;
    cudaError_t err = cudaSuccess;
    if (b.x < 1 || b.y < 1 || b.z < 1 || b.x > 1024 || b.y > 1024 || b.z > 64 || threads > 1024)
        why = "block size outside 1024 threads (x, y <= 1024, z <= 64)", err = cudaErrorInvalidConfiguration;
    else if (gr.x < 1 || gr.y < 1 || gr.z < 1 || gr.x > 0x7fffffffu || gr.y > 65535 || gr.z > 65535)
        why = "grid outside (2^31 - 1, 65535, 65535)", err = cudaErrorInvalidConfiguration;
    else if (!valid_stream(c.stream))
        why = "unknown stream", err = cudaErrorInvalidResourceHandle;
    else {
        auto it = max_dynamic_smem.find(kernel);
        const size_t limit = it != max_dynamic_smem.end() && (size_t)it->second > SMEM_DEFAULT
                                 ? (size_t)it->second
                                 : SMEM_DEFAULT;
        if (c.smem > limit)
            why = c.smem > SMEM_OPTIN ? "dynamic shared memory over the device's 227 KiB"
                                      : "dynamic shared memory over 48 KiB without "
                                        "cudaFuncSetAttribute(MaxDynamicSharedMemorySize)",
            err = cudaErrorInvalidValue;
    }
    if (err == cudaSuccess && fail_count > 0 && strlen(c.file) >= fail_suffix.size() &&
        strcmp(c.file + strlen(c.file) - fail_suffix.size(), fail_suffix.c_str()) == 0) {
        fail_count--;
        why = "refused on request (g4emu_fail_launches)", err = cudaErrorLaunchOutOfResources;
    }
    if (err != cudaSuccess) {
        note("launch at %s:%d refused (%s): grid (%u,%u,%u) block (%u,%u,%u) dynamic smem %zu: %s",
             c.file, c.line, cudaGetErrorName(err), gr.x, gr.y, gr.z, b.x, b.y, b.z, c.smem, why);
        fail(err);
        // a launch that fails while its stream captures invalidates the capture
        if (capture *cp = capturing(c.stream)) invalidate(cp, err);
        return;
    }
    auto rec = std::make_shared<launch_rec>(launch_rec{gr, b, c.smem, c.file, c.line, std::move(t)});
    fail(enqueue(c.stream, [rec] { run_launch(*rec); }));
}

} // namespace g4emu

// ---- runtime API ------------------------------------------------------------------------------
extern "C" {

int g4emu_fault_count(void) {
    guard g(mu);
    return faults;
}

void g4emu_expect_faults(int on) {
    guard g(mu);
    flush();
    faults_expected = on != 0;
    if (!on) sticky = cudaSuccess; // the harness's own tests continue after a planted fault
}

void g4emu_fail_launches(const char *file_suffix, int count) {
    guard g(mu);
    fail_suffix = file_suffix;
    fail_count = count;
}

const char *cudaGetErrorName(cudaError_t e) {
    switch (e) {
#define N(x) case x: return #x;
        N(cudaSuccess) N(cudaErrorInvalidValue) N(cudaErrorMemoryAllocation)
        N(cudaErrorInitializationError) N(cudaErrorInvalidConfiguration)
        N(cudaErrorInvalidDevicePointer) N(cudaErrorInvalidMemcpyDirection)
        N(cudaErrorInvalidDeviceFunction) N(cudaErrorNoDevice) N(cudaErrorInvalidDevice)
        N(cudaErrorInvalidResourceHandle) N(cudaErrorNotReady) N(cudaErrorIllegalAddress)
        N(cudaErrorLaunchOutOfResources) N(cudaErrorAssert) N(cudaErrorIllegalInstruction)
        N(cudaErrorMisalignedAddress) N(cudaErrorLaunchFailure) N(cudaErrorUnknown)
        N(cudaErrorIllegalState) N(cudaErrorStreamCaptureUnsupported)
        N(cudaErrorStreamCaptureInvalidated) N(cudaErrorStreamCaptureImplicit)
        N(cudaErrorCapturedEvent) N(cudaErrorStreamCaptureWrongThread)
#undef N
    }
    return "cudaErrorUnknown";
}

const char *cudaGetErrorString(cudaError_t e) {
    switch (e) {
    case cudaSuccess: return "no error";
    case cudaErrorInvalidValue: return "invalid argument";
    case cudaErrorMemoryAllocation: return "out of memory";
    case cudaErrorInitializationError: return "initialization error";
    case cudaErrorInvalidConfiguration: return "invalid configuration argument";
    case cudaErrorInvalidDevicePointer: return "invalid device pointer";
    case cudaErrorInvalidMemcpyDirection: return "invalid copy direction for memcpy";
    case cudaErrorInvalidDeviceFunction: return "invalid device function";
    case cudaErrorNoDevice: return "no CUDA-capable device is detected";
    case cudaErrorInvalidDevice: return "invalid device ordinal";
    case cudaErrorInvalidResourceHandle: return "invalid resource handle";
    case cudaErrorNotReady: return "device not ready";
    case cudaErrorIllegalAddress: return "an illegal memory access was encountered";
    case cudaErrorLaunchOutOfResources: return "too many resources requested for launch";
    case cudaErrorAssert: return "device-side assert triggered";
    case cudaErrorIllegalInstruction: return "an illegal instruction was encountered";
    case cudaErrorMisalignedAddress: return "misaligned address";
    case cudaErrorLaunchFailure: return "unspecified launch failure";
    case cudaErrorUnknown: return "unknown error";
    case cudaErrorIllegalState: return "the operation cannot be performed in the present state";
    case cudaErrorStreamCaptureUnsupported: return "operation not permitted when stream is capturing";
    case cudaErrorStreamCaptureInvalidated:
        return "operation failed due to a previous error during capture";
    case cudaErrorStreamCaptureImplicit:
        return "operation would make the legacy stream depend on a capturing blocking stream";
    case cudaErrorCapturedEvent:
        return "operation not permitted on an event last recorded in a capturing stream";
    case cudaErrorStreamCaptureWrongThread:
        return "attempt to terminate a thread-local capture sequence from another thread";
    }
    return "unknown error";
}

cudaError_t cudaGetLastError(void) {
    guard g(mu);
    const cudaError_t e = last_error;
    last_error = cudaSuccess;
    return sticky != cudaSuccess ? sticky : e;
}

cudaError_t cudaPeekAtLastError(void) {
    guard g(mu);
    return sticky != cudaSuccess ? sticky : last_error;
}

cudaError_t cudaGetDeviceCount(int *count) {
    *count = cfg().devices;
    return cfg().devices > 0 ? cudaSuccess : fail(cudaErrorNoDevice);
}

cudaError_t cudaSetDevice(int device) {
    if (device < 0 || device >= cfg().devices) return fail(cudaErrorInvalidDevice);
    current_device = device;
    return cudaSuccess;
}

cudaError_t cudaGetDevice(int *device) {
    *device = current_device;
    return cudaSuccess;
}

cudaError_t cudaDeviceGetAttribute(int *value, cudaDeviceAttr attr, int device) {
    if (device < 0 || device >= cfg().devices) return fail(cudaErrorInvalidDevice);
    switch (attr) {
    case cudaDevAttrMaxThreadsPerBlock:
    case cudaDevAttrMaxBlockDimX: *value = 1024; break;
    case cudaDevAttrMaxGridDimX: *value = 0x7fffffff; break;
    case cudaDevAttrMaxSharedMemoryPerBlock: *value = (int)SMEM_DEFAULT; break;
    case cudaDevAttrWarpSize: *value = 32; break;
    case cudaDevAttrMultiProcessorCount: *value = cfg().sm_count; break;
    case cudaDevAttrComputeCapabilityMajor: *value = 9; break;
    case cudaDevAttrComputeCapabilityMinor: *value = 0; break;
    case cudaDevAttrMaxSharedMemoryPerBlockOptin: *value = (int)SMEM_OPTIN; break;
    default: return fail(cudaErrorInvalidValue);
    }
    return cudaSuccess;
}

cudaError_t cudaGetDeviceProperties(struct cudaDeviceProp *p, int device) {
    if (device < 0 || device >= cfg().devices) return fail(cudaErrorInvalidDevice);
    memset(p, 0, sizeof *p);
    snprintf(p->name, sizeof p->name, "g4emu (CPU execution harness, sm_90 limits)");
    p->totalGlobalMem = cfg().capacity;
    p->sharedMemPerBlock = SMEM_DEFAULT;
    p->sharedMemPerBlockOptin = SMEM_OPTIN;
    p->warpSize = 32;
    p->maxThreadsPerBlock = 1024;
    p->maxThreadsDim[0] = p->maxThreadsDim[1] = 1024;
    p->maxThreadsDim[2] = 64;
    p->maxGridSize[0] = 0x7fffffff;
    p->maxGridSize[1] = p->maxGridSize[2] = 65535;
    p->major = 9;
    p->minor = 0;
    p->multiProcessorCount = cfg().sm_count;
    p->l2CacheSize = 50 << 20; // an H100's
    return cudaSuccess;
}

// The harness implements CUDA 13.0's runtime API; no driver beneath it.
cudaError_t cudaDriverGetVersion(int *version) {
    *version = CUDART_VERSION;
    return cudaSuccess;
}

cudaError_t cudaRuntimeGetVersion(int *version) {
    *version = CUDART_VERSION;
    return cudaSuccess;
}

cudaError_t cudaDeviceSynchronize(void) {
    guard g(mu);
    if (cudaError_t e = unsafe_call("cudaDeviceSynchronize")) return fail(e);
    flush();
    return fail(sticky);
}

cudaError_t cudaDeviceReset(void) {
    guard g(mu);
    flush();
    for (auto &a : allocs) free((void *)a.first);
    allocs.clear();
    device_used = 0;
    sticky = cudaSuccess;
    return cudaSuccess;
}

static size_t rounded(size_t bytes) { return (bytes + 255) / 256 * 256; }

cudaError_t cudaMalloc(void **ptr, size_t bytes) {
    guard g(mu);
    if (!ptr) return fail(cudaErrorInvalidValue);
    if (sticky != cudaSuccess) return fail(sticky);
    *ptr = nullptr;
    if (cudaError_t e = unsafe_call("cudaMalloc")) return fail(e);
    if (bytes == 0) return cudaSuccess;
    if (bytes > cfg().capacity || rounded(bytes) > cfg().capacity - device_used)
        return fail(cudaErrorMemoryAllocation);
    void *p = nullptr;
    if (posix_memalign(&p, 256, bytes) != 0) return fail(cudaErrorMemoryAllocation);
    memset(p, 0xFF, bytes); // fresh device memory: NaN until something writes it
    allocs[(uintptr_t)p] = allocation{bytes, false};
    device_used += rounded(bytes);
    *ptr = p;
    return cudaSuccess;
}

cudaError_t cudaFree(void *ptr) {
    guard g(mu);
    if (cudaError_t e = unsafe_call("cudaFree")) return fail(e);
    flush(); // cudaFree synchronizes the device
    if (!ptr) return cudaSuccess;
    auto it = allocs.find((uintptr_t)ptr);
    if (it == allocs.end() || it->second.pinned_host) {
        note("cudaFree(%p): not the start of a device allocation", ptr);
        return fail(cudaErrorInvalidValue);
    }
    device_used -= rounded(it->second.bytes);
    allocs.erase(it);
    free(ptr);
    return fail(sticky);
}

cudaError_t cudaHostAlloc(void **ptr, size_t bytes, unsigned int flags) {
    guard g(mu);
    (void)flags;
    if (cudaError_t e = unsafe_call("cudaHostAlloc")) return fail(e);
    void *p = nullptr;
    if (posix_memalign(&p, 64, bytes ? bytes : 1) != 0) return fail(cudaErrorMemoryAllocation);
    memset(p, 0xFF, bytes);
    allocs[(uintptr_t)p] = allocation{bytes ? bytes : 1, true};
    *ptr = p;
    return cudaSuccess;
}

cudaError_t cudaMallocHost(void **ptr, size_t bytes) { return cudaHostAlloc(ptr, bytes, 0); }

cudaError_t cudaFreeHost(void *ptr) {
    guard g(mu);
    if (cudaError_t e = unsafe_call("cudaFreeHost")) return fail(e);
    flush();
    if (!ptr) return cudaSuccess;
    auto it = allocs.find((uintptr_t)ptr);
    if (it == allocs.end() || !it->second.pinned_host) {
        note("cudaFreeHost(%p): not from cudaMallocHost", ptr);
        return fail(cudaErrorInvalidValue);
    }
    allocs.erase(it);
    free(ptr);
    return cudaSuccess;
}

cudaError_t cudaMemGetInfo(size_t *free_bytes, size_t *total_bytes) {
    guard g(mu);
    if (sticky != cudaSuccess) return fail(sticky);
    *free_bytes = cfg().capacity - device_used;
    *total_bytes = cfg().capacity;
    return cudaSuccess;
}

// Checks a copy's pointers against its kind; false (with a note) when they do not match.
static bool check_copy(void *dst, const void *src, size_t bytes, cudaMemcpyKind *kind) {
    const bool dd = is_device(dst, bytes), sd = is_device(src, bytes);
    if ((touches_device(dst, bytes) && !dd) || (touches_device(src, bytes) && !sd)) {
        note("cudaMemcpy of %zu bytes: %s range runs past the end of its device allocation",
             bytes, touches_device(dst, bytes) && !dd ? "destination" : "source");
        return false;
    }
    if (*kind == cudaMemcpyDefault)
        *kind = dd ? (sd ? cudaMemcpyDeviceToDevice : cudaMemcpyHostToDevice)
                   : (sd ? cudaMemcpyDeviceToHost : cudaMemcpyHostToHost);
    static const char *names[] = {"HostToHost", "HostToDevice", "DeviceToHost", "DeviceToDevice"};
    const bool want_dd = *kind == cudaMemcpyHostToDevice || *kind == cudaMemcpyDeviceToDevice;
    const bool want_sd = *kind == cudaMemcpyDeviceToHost || *kind == cudaMemcpyDeviceToDevice;
    if ((int)*kind < 0 || (int)*kind > 3 || dd != want_dd || sd != want_sd) {
        note("cudaMemcpy%s of %zu bytes: destination is %s memory, source is %s memory",
             (int)*kind >= 0 && (int)*kind <= 3 ? names[*kind] : "(bad kind)", bytes,
             dd ? "device" : "host", sd ? "device" : "host");
        return false;
    }
    return true;
}

cudaError_t cudaMemcpy(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind) {
    guard g(mu);
    if (cudaError_t e = unsafe_call("cudaMemcpy")) return fail(e);
    if (cudaError_t e = legacy_conflict(nullptr, "cudaMemcpy")) return fail(e);
    flush(); // a blocking copy waits for the work before it
    if (sticky != cudaSuccess) return fail(sticky);
    if (bytes == 0) return cudaSuccess;
    if (!check_copy(dst, src, bytes, &kind)) return fail(cudaErrorInvalidValue);
    memmove(dst, src, bytes);
    return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void *dst, const void *src, size_t bytes, cudaMemcpyKind kind,
                            cudaStream_t stream) {
    guard g(mu);
    if (sticky != cudaSuccess) return fail(sticky);
    if (!valid_stream(stream)) return fail(cudaErrorInvalidResourceHandle);
    if (bytes == 0) return cudaSuccess;
    if (!check_copy(dst, src, bytes, &kind)) return fail(cudaErrorInvalidValue);
    if (capture *c = capturing(stream)) {
        // A graph's copy node replays with the same host pointer: pageable memory cannot be
        // staged once for every replay, so capture refuses it.
        const bool pageable = (kind == cudaMemcpyHostToDevice && !is_pinned(src)) ||
                              (kind == cudaMemcpyDeviceToHost && !is_pinned(dst)) ||
                              (kind == cudaMemcpyHostToHost);
        if (pageable && !c->invalidated) {
            note("cudaMemcpyAsync of %zu bytes with pageable host memory during stream capture: "
                 "cudaErrorStreamCaptureUnsupported (the capture is invalidated)", bytes);
            invalidate(c, cudaErrorStreamCaptureUnsupported);
            return fail(cudaErrorStreamCaptureUnsupported);
        }
    }
    if (kind == cudaMemcpyHostToDevice && !is_pinned(src)) {
        // pageable source: staged at the call (the caller may reuse it at once)
        auto staged = std::make_shared<std::vector<unsigned char>>(
            (const unsigned char *)src, (const unsigned char *)src + bytes);
        return fail(enqueue(stream, [dst, staged] { memcpy(dst, staged->data(), staged->size()); }));
    }
    return fail(enqueue(stream, [dst, src, bytes] { memmove(dst, src, bytes); }));
}

cudaError_t cudaMemsetAsync(void *dst, int value, size_t bytes, cudaStream_t stream) {
    guard g(mu);
    if (sticky != cudaSuccess) return fail(sticky);
    if (!valid_stream(stream)) return fail(cudaErrorInvalidResourceHandle);
    if (bytes == 0) return cudaSuccess;
    if (!is_device(dst, bytes)) {
        note("cudaMemset of %zu bytes at %p: not inside one device allocation", bytes, dst);
        return fail(cudaErrorInvalidValue);
    }
    return fail(enqueue(stream, [dst, value, bytes] { memset(dst, value, bytes); }));
}

cudaError_t cudaMemset(void *dst, int value, size_t bytes) {
    return cudaMemsetAsync(dst, value, bytes, nullptr);
}

cudaError_t cudaStreamCreateWithFlags(cudaStream_t *stream, unsigned int flags) {
    guard g(mu);
    if (sticky != cudaSuccess) return fail(sticky);
    if (flags & ~1u) return fail(cudaErrorInvalidValue);
    cudaStream_t s = new CUstream_st{flags, nullptr};
    streams.insert(s);
    *stream = s;
    return cudaSuccess;
}

cudaError_t cudaStreamCreate(cudaStream_t *stream) { return cudaStreamCreateWithFlags(stream, 0); }

cudaError_t cudaStreamDestroy(cudaStream_t stream) {
    guard g(mu);
    if (!streams.count(stream)) return fail(cudaErrorInvalidResourceHandle);
    flush(); // its pending work still completes (a capture in progress is dropped)
    streams.erase(stream);
    delete stream;
    return cudaSuccess;
}

// Synchronizing or querying a capturing stream conflicts with capture in every mode.
static cudaError_t capture_sync(cudaStream_t stream, const char *what) {
    capture *c = capturing(stream);
    if (!c) return legacy_conflict(stream, what);
    note("%s on a capturing stream: cudaErrorStreamCaptureUnsupported (the capture is "
         "invalidated)", what);
    invalidate(c, cudaErrorStreamCaptureUnsupported);
    return cudaErrorStreamCaptureUnsupported;
}

cudaError_t cudaStreamSynchronize(cudaStream_t stream) {
    guard g(mu);
    if (!valid_stream(stream)) return fail(cudaErrorInvalidResourceHandle);
    if (cudaError_t e = capture_sync(stream, "cudaStreamSynchronize")) return fail(e);
    flush();
    return fail(sticky);
}

cudaError_t cudaStreamQuery(cudaStream_t stream) {
    guard g(mu);
    if (!valid_stream(stream)) return fail(cudaErrorInvalidResourceHandle);
    if (cudaError_t e = capture_sync(stream, "cudaStreamQuery")) return fail(e);
    flush();
    return fail(sticky);
}

cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned int flags) {
    guard g(mu);
    (void)flags;
    if (!valid_stream(stream) || !events.count(event)) return fail(cudaErrorInvalidResourceHandle);
    return fail(sticky); // one queue in submission order already orders the streams
}

struct CUevent_st {
    bool timing;
    bool recorded;
    bool captured; // last recorded into a capturing stream
    double ms;
};

cudaError_t cudaEventCreateWithFlags(cudaEvent_t *event, unsigned int flags) {
    guard g(mu);
    cudaEvent_t e = new CUevent_st{!(flags & cudaEventDisableTiming), false, false, 0.0};
    events.insert(e);
    *event = e;
    return cudaSuccess;
}

cudaError_t cudaEventCreate(cudaEvent_t *event) { return cudaEventCreateWithFlags(event, 0); }

cudaError_t cudaEventDestroy(cudaEvent_t event) {
    guard g(mu);
    if (!events.count(event)) return fail(cudaErrorInvalidResourceHandle);
    flush();
    events.erase(event);
    delete event;
    return cudaSuccess;
}

cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream) {
    guard g(mu);
    if (!events.count(event) || !valid_stream(stream)) return fail(cudaErrorInvalidResourceHandle);
    event->recorded = false;
    event->captured = capturing(stream) != nullptr;
    if (cudaError_t e = enqueue(stream, [event] {
            event->ms = std::chrono::duration<double, std::milli>(
                            std::chrono::steady_clock::now().time_since_epoch())
                            .count();
            event->recorded = true;
        }))
        return fail(e);
    return fail(sticky);
}

cudaError_t cudaEventSynchronize(cudaEvent_t event) {
    guard g(mu);
    if (!events.count(event)) return fail(cudaErrorInvalidResourceHandle);
    if (event->captured) return fail(cudaErrorCapturedEvent); // a node of a graph, not work
    flush();
    return fail(sticky);
}

cudaError_t cudaEventQuery(cudaEvent_t event) {
    guard g(mu);
    if (!events.count(event)) return fail(cudaErrorInvalidResourceHandle);
    if (event->captured) return fail(cudaErrorCapturedEvent);
    flush();
    return fail(sticky);
}

cudaError_t cudaEventElapsedTime(float *ms, cudaEvent_t start, cudaEvent_t end) {
    guard g(mu);
    if (!events.count(start) || !events.count(end)) return fail(cudaErrorInvalidResourceHandle);
    if (!start->timing || !end->timing) return fail(cudaErrorInvalidResourceHandle);
    if (!start->recorded || !end->recorded) return fail(cudaErrorNotReady);
    *ms = (float)(end->ms - start->ms);
    return cudaSuccess;
}

cudaError_t cudaFuncSetAttribute(const void *func, cudaFuncAttribute attr, int value) {
    guard g(mu);
    if (attr == cudaFuncAttributeMaxDynamicSharedMemorySize) {
        if (value < 0 || (size_t)value > SMEM_OPTIN) return fail(cudaErrorInvalidValue);
        max_dynamic_smem[func] = value;
    }
    return cudaSuccess;
}

// ---- stream capture and graphs -----------------------------------------------------------------
cudaError_t cudaStreamBeginCapture(cudaStream_t stream, cudaStreamCaptureMode mode) {
    guard g(mu);
    if (sticky != cudaSuccess) return fail(sticky);
    if (stream == nullptr || stream == cudaStreamLegacy)
        return fail(cudaErrorStreamCaptureUnsupported); // the legacy stream cannot capture
    if (!valid_stream(stream) || stream == cudaStreamPerThread)
        return fail(cudaErrorInvalidResourceHandle);
    if ((int)mode < 0 || (int)mode > 2) return fail(cudaErrorInvalidValue);
    if (stream->cap) return fail(cudaErrorIllegalState);
    stream->cap.reset(new capture{{}, mode, std::this_thread::get_id(), false, cudaSuccess});
    return cudaSuccess;
}

cudaError_t cudaStreamEndCapture(cudaStream_t stream, cudaGraph_t *graph) {
    guard g(mu);
    if (!graph) return fail(cudaErrorInvalidValue);
    *graph = nullptr;
    capture *c = capturing(stream);
    if (!c) return fail(valid_stream(stream) ? cudaErrorIllegalState : cudaErrorInvalidResourceHandle);
    if (c->mode != cudaStreamCaptureModeRelaxed && c->thread != std::this_thread::get_id())
        return fail(cudaErrorStreamCaptureWrongThread);
    std::unique_ptr<capture> done = std::move(stream->cap);
    if (done->invalidated) return fail(cudaErrorStreamCaptureInvalidated);
    if (sticky != cudaSuccess) return fail(sticky);
    cudaGraph_t gr = new CUgraph_st{std::move(done->ops)};
    graphs.insert(gr);
    *graph = gr;
    return cudaSuccess;
}

cudaError_t cudaStreamIsCapturing(cudaStream_t stream, cudaStreamCaptureStatus *status) {
    guard g(mu);
    if (!status) return fail(cudaErrorInvalidValue);
    if (!valid_stream(stream)) return fail(cudaErrorInvalidResourceHandle);
    const capture *c = capturing(stream);
    *status = !c ? cudaStreamCaptureStatusNone
              : c->invalidated ? cudaStreamCaptureStatusInvalidated
                               : cudaStreamCaptureStatusActive;
    return cudaSuccess;
}

cudaError_t cudaGraphInstantiate(cudaGraphExec_t *exec, cudaGraph_t graph,
                                 unsigned long long flags) {
    guard g(mu);
    if (!exec) return fail(cudaErrorInvalidValue);
    *exec = nullptr;
    if (!graphs.count(graph)) return fail(cudaErrorInvalidValue);
    if (flags & ~15ull) return fail(cudaErrorInvalidValue);
    if (sticky != cudaSuccess) return fail(sticky);
    // the executable graph is a snapshot: destroying or changing the graph later leaves it
    cudaGraphExec_t e = new CUgraphExec_st{
        std::make_shared<const std::vector<std::function<void()>>>(graph->ops)};
    graph_execs.insert(e);
    *exec = e;
    return cudaSuccess;
}

cudaError_t cudaGraphLaunch(cudaGraphExec_t exec, cudaStream_t stream) {
    guard g(mu);
    if (!graph_execs.count(exec)) return fail(cudaErrorInvalidResourceHandle);
    if (!valid_stream(stream)) return fail(cudaErrorInvalidResourceHandle);
    if (sticky != cudaSuccess) return fail(sticky);
    auto ops = exec->ops;
    graph_launches++;
    return fail(enqueue(stream, [ops] {
        for (const auto &op : *ops)
            if (sticky == cudaSuccess) op();
    }));
}

cudaError_t cudaGraphExecDestroy(cudaGraphExec_t exec) {
    guard g(mu);
    if (!graph_execs.count(exec)) return fail(cudaErrorInvalidResourceHandle);
    graph_execs.erase(exec);
    delete exec; // a launch still queued holds its own reference to the operations
    return cudaSuccess;
}

cudaError_t cudaGraphDestroy(cudaGraph_t graph) {
    guard g(mu);
    if (!graphs.count(graph)) return fail(cudaErrorInvalidResourceHandle);
    graphs.erase(graph);
    delete graph;
    return cudaSuccess;
}

unsigned long long g4emu_kernel_runs(void) {
    guard g(mu);
    flush();
    return kernel_runs;
}

unsigned long long g4emu_graph_launches(void) {
    guard g(mu);
    return graph_launches;
}

// ---- cuBLAS -------------------------------------------------------------------------------------
cublasStatus_t cublasCreate(cublasHandle_t *handle) {
    guard g(mu);
    if (!handle) return CUBLAS_STATUS_INVALID_VALUE;
    // cuBLAS allocates its workspace at creation; on a full device it reports
    // CUBLAS_STATUS_NOT_INITIALIZED (not ALLOC_FAILED), as the real library does.
    if (sticky != cudaSuccess || cfg().capacity - device_used < CUBLAS_WORKSPACE)
        return CUBLAS_STATUS_NOT_INITIALIZED;
    device_used += CUBLAS_WORKSPACE;
    blas_handle *h = new blas_handle{nullptr, CUBLAS_POINTER_MODE_HOST};
    handles.insert(h);
    *handle = (cublasHandle_t)h;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasDestroy(cublasHandle_t handle) {
    guard g(mu);
    if (!handles.count(handle)) return CUBLAS_STATUS_NOT_INITIALIZED;
    flush();
    handles.erase(handle);
    delete (blas_handle *)handle;
    device_used -= CUBLAS_WORKSPACE;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetStream(cublasHandle_t handle, cudaStream_t stream) {
    guard g(mu);
    if (!handles.count(handle)) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (!valid_stream(stream)) return CUBLAS_STATUS_INVALID_VALUE;
    ((blas_handle *)handle)->stream = stream;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasGetStream(cublasHandle_t handle, cudaStream_t *stream) {
    guard g(mu);
    if (!handles.count(handle)) return CUBLAS_STATUS_NOT_INITIALIZED;
    *stream = ((blas_handle *)handle)->stream;
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSetMathMode(cublasHandle_t handle, cublasMath_t mode) {
    guard g(mu);
    (void)mode;
    return handles.count(handle) ? CUBLAS_STATUS_SUCCESS : CUBLAS_STATUS_NOT_INITIALIZED;
}

cublasStatus_t cublasSetPointerMode(cublasHandle_t handle, cublasPointerMode_t mode) {
    guard g(mu);
    if (!handles.count(handle)) return CUBLAS_STATUS_NOT_INITIALIZED;
    if (mode != CUBLAS_POINTER_MODE_HOST && mode != CUBLAS_POINTER_MODE_DEVICE)
        return CUBLAS_STATUS_INVALID_VALUE;
    ((blas_handle *)handle)->pointer_mode = mode;
    return CUBLAS_STATUS_SUCCESS;
}

const char *cublasGetStatusName(cublasStatus_t s) {
    switch (s) {
    case CUBLAS_STATUS_SUCCESS: return "CUBLAS_STATUS_SUCCESS";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "CUBLAS_STATUS_NOT_INITIALIZED";
    case CUBLAS_STATUS_ALLOC_FAILED: return "CUBLAS_STATUS_ALLOC_FAILED";
    case CUBLAS_STATUS_INVALID_VALUE: return "CUBLAS_STATUS_INVALID_VALUE";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "CUBLAS_STATUS_ARCH_MISMATCH";
    case CUBLAS_STATUS_MAPPING_ERROR: return "CUBLAS_STATUS_MAPPING_ERROR";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "CUBLAS_STATUS_EXECUTION_FAILED";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "CUBLAS_STATUS_INTERNAL_ERROR";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "CUBLAS_STATUS_NOT_SUPPORTED";
    }
    return "CUBLAS_STATUS_UNKNOWN";
}

const char *cublasGetStatusString(cublasStatus_t s) {
    switch (s) {
    case CUBLAS_STATUS_SUCCESS: return "success";
    case CUBLAS_STATUS_NOT_INITIALIZED: return "the library was not initialized";
    case CUBLAS_STATUS_ALLOC_FAILED: return "the resource allocation failed";
    case CUBLAS_STATUS_INVALID_VALUE: return "an invalid numeric value was used as an argument";
    case CUBLAS_STATUS_ARCH_MISMATCH: return "an absent device architectural feature is required";
    case CUBLAS_STATUS_MAPPING_ERROR: return "an access to GPU memory space failed";
    case CUBLAS_STATUS_EXECUTION_FAILED: return "the GPU program failed to execute";
    case CUBLAS_STATUS_INTERNAL_ERROR: return "an internal operation failed";
    case CUBLAS_STATUS_NOT_SUPPORTED: return "the functionality requested is not supported";
    }
    return "unknown error";
}

static cublasStatus_t blas_invalid(const char *what) {
    note("cublasGemmEx: %s: CUBLAS_STATUS_INVALID_VALUE", what);
    return CUBLAS_STATUS_INVALID_VALUE;
}

cublasStatus_t cublasGemmEx(cublasHandle_t handle, cublasOperation_t transa,
                            cublasOperation_t transb, int m, int n, int k, const void *alpha,
                            const void *A, cudaDataType Atype, int lda, const void *B,
                            cudaDataType Btype, int ldb, const void *beta, void *C,
                            cudaDataType Ctype, int ldc, cublasComputeType_t computeType,
                            cublasGemmAlgo_t algo) {
    guard g(mu);
    if (!handles.count(handle)) return CUBLAS_STATUS_NOT_INITIALIZED;
    const blas_handle *h = (const blas_handle *)handle;
    if (sticky != cudaSuccess) return CUBLAS_STATUS_EXECUTION_FAILED;
    // The documented argument checks (cuBLAS library guide, cublasGemmEx).
    if ((transa != CUBLAS_OP_N && transa != CUBLAS_OP_T && transa != CUBLAS_OP_C) ||
        (transb != CUBLAS_OP_N && transb != CUBLAS_OP_T && transb != CUBLAS_OP_C))
        return blas_invalid("transa/transb not N, T or C");
    if (m < 0 || n < 0 || k < 0) return blas_invalid(fmt("m %d, n %d, k %d", m, n, k).c_str());
    const int a_rows = transa == CUBLAS_OP_N ? m : k, b_rows = transb == CUBLAS_OP_N ? k : n;
    if (lda < (a_rows > 1 ? a_rows : 1))
        return blas_invalid(fmt("lda %d < %s = %d", lda, transa == CUBLAS_OP_N ? "m" : "k", a_rows).c_str());
    if (ldb < (b_rows > 1 ? b_rows : 1))
        return blas_invalid(fmt("ldb %d < %s = %d", ldb, transb == CUBLAS_OP_N ? "k" : "n", b_rows).c_str());
    if (ldc < (m > 1 ? m : 1)) return blas_invalid(fmt("ldc %d < m = %d", ldc, m).c_str());
    if (!((int)algo == CUBLAS_GEMM_DEFAULT || ((int)algo >= 0 && (int)algo <= 23) ||
          ((int)algo >= 99 && (int)algo <= 115)))
        return blas_invalid("algo");
    if (!gemm_types_ok(computeType, Atype, Btype, Ctype)) {
        note("cublasGemmEx: A %s, B %s, C %s with compute type %d: CUBLAS_STATUS_NOT_SUPPORTED",
             type_name(Atype), type_name(Btype), type_name(Ctype), (int)computeType);
        return CUBLAS_STATUS_NOT_SUPPORTED;
    }
    if (!alpha || !beta) return blas_invalid("alpha or beta is NULL");
    if (m == 0 || n == 0) return CUBLAS_STATUS_SUCCESS;
    const bool dev_scalars = h->pointer_mode == CUBLAS_POINTER_MODE_DEVICE;
    const bool scale_double = computeType == CUBLAS_COMPUTE_64F;
    const size_t scale_bytes = scale_double ? 8 : computeType == CUBLAS_COMPUTE_16F ? 2 : 4;
    if (is_device(alpha, scale_bytes) != dev_scalars || is_device(beta, scale_bytes) != dev_scalars) {
        record_fault(cudaErrorIllegalAddress,
                     fmt("cublasGemmEx: alpha/beta must be %s pointers in the handle's pointer mode",
                         dev_scalars ? "device" : "host"));
        return CUBLAS_STATUS_SUCCESS;
    }
    // Operands: element-aligned and inside one device allocation each; C must not overlap A, B.
    const size_t ea = type_size(Atype), ec = type_size(Ctype);
    const int a_cols = transa == CUBLAS_OP_N ? k : m, b_cols = transb == CUBLAS_OP_N ? n : k;
    struct operand {
        const char *name;
        const void *p;
        size_t esize;
        int rows, cols, ld;
        size_t bytes() const {
            return rows == 0 || cols == 0 ? 0 : ((size_t)(cols - 1) * ld + rows) * esize;
        }
    } ops[3] = {{"A", A, ea, a_rows, a_cols, lda}, {"B", B, ea, b_rows, b_cols, ldb},
                {"C", C, ec, m, n, ldc}};
    for (const operand &o : ops) {
        if (o.bytes() == 0) continue;
        if ((uintptr_t)o.p % o.esize) {
            record_fault(cudaErrorMisalignedAddress,
                         fmt("cublasGemmEx: %s at %p is not aligned to its %zu-byte elements",
                             o.name, o.p, o.esize));
            return CUBLAS_STATUS_SUCCESS;
        }
        uintptr_t start = 0;
        const allocation *al = find_alloc(o.p, o.bytes(), &start);
        if (!al || al->pinned_host) {
            const allocation *any = find_alloc(o.p, 1, &start);
            record_fault(cudaErrorIllegalAddress,
                         any ? fmt("cublasGemmEx: %s (%d x %d, ld %d, %zu-byte elements) spans "
                                   "%zu bytes from offset %zu of a %zu-byte allocation: reads "
                                   "past its end (wrong ld or size?)",
                                   o.name, o.rows, o.cols, o.ld, o.esize, o.bytes(),
                                   (size_t)((uintptr_t)o.p - start), any->bytes)
                             : fmt("cublasGemmEx: %s at %p is not device memory", o.name, o.p));
            return CUBLAS_STATUS_SUCCESS;
        }
    }
    for (int i = 0; i < 2; i++) {
        const uintptr_t a0 = (uintptr_t)ops[i].p, a1 = a0 + ops[i].bytes();
        const uintptr_t c0 = (uintptr_t)C, c1 = c0 + ops[2].bytes();
        if (a0 < c1 && c0 < a1 && ops[i].bytes()) {
            record_fault(cudaErrorIllegalAddress,
                         fmt("cublasGemmEx: C overlaps %s (in-place GEMM is undefined)", ops[i].name));
            return CUBLAS_STATUS_SUCCESS;
        }
    }
    double al = 0, be = 0;
    if (!dev_scalars) {
        al = scale_double ? *(const double *)alpha
             : computeType == CUBLAS_COMPUTE_16F ? __half2float(*(const __half *)alpha)
                                                 : *(const float *)alpha;
        be = scale_double ? *(const double *)beta
             : computeType == CUBLAS_COMPUTE_16F ? __half2float(*(const __half *)beta)
                                                 : *(const float *)beta;
    }
    const bool fp32_acc = !scale_double && computeType != CUBLAS_COMPUTE_32I;
    // On the handle's stream: recorded into its capture when it captures (cuBLAS calls can be
    // captured; host-mode alpha and beta are read here, once, as cuBLAS does).
    cudaError_t qe = enqueue(h->stream, [=] {
        kernel_runs++; // a GEMM is at least one kernel on the GPU
        double a_s = al, b_s = be;
        if (dev_scalars) {
            a_s = scale_double ? *(const double *)alpha : *(const float *)alpha;
            b_s = scale_double ? *(const double *)beta : *(const float *)beta;
        }
        // op(A) (m, k) and op(B)^T (n, k) row-major, widened once
        std::vector<float> a((size_t)m * k), b((size_t)n * k);
        for (int i = 0; i < m; i++)
            for (int l = 0; l < k; l++)
                a[(size_t)i * k + l] = (float)load_elem(
                    A, transa == CUBLAS_OP_N ? (size_t)l * lda + i : (size_t)i * lda + l, Atype);
        for (int j = 0; j < n; j++)
            for (int l = 0; l < k; l++)
                b[(size_t)j * k + l] = (float)load_elem(
                    B, transb == CUBLAS_OP_N ? (size_t)j * ldb + l : (size_t)l * ldb + j, Btype);
        for (int j = 0; j < n; j++)
            for (int i = 0; i < m; i++) {
                const float *ar = &a[(size_t)i * k], *br = &b[(size_t)j * k];
                double acc;
                if (fp32_acc) { // fp32 accumulation, k in order
                    float s = 0.0f;
                    for (int l = 0; l < k; l++) s += ar[l] * br[l];
                    acc = s;
                } else {
                    acc = 0.0;
                    for (int l = 0; l < k; l++) acc += (double)ar[l] * br[l];
                }
                const size_t ci = (size_t)j * ldc + i;
                double v = a_s * acc;
                if (b_s != 0.0) v += b_s * load_elem(C, ci, Ctype); // beta 0: C is not read
                store_elem(C, ci, Ctype, fp32_acc ? (double)(float)v : v);
            }
    });
    if (qe != cudaSuccess) { // its kernel launch failed (an invalidated capture, ...)
        fail(qe);
        return CUBLAS_STATUS_EXECUTION_FAILED;
    }
    return CUBLAS_STATUS_SUCCESS;
}

cublasStatus_t cublasSgemm(cublasHandle_t handle, cublasOperation_t transa,
                           cublasOperation_t transb, int m, int n, int k, const float *alpha,
                           const float *A, int lda, const float *B, int ldb, const float *beta,
                           float *C, int ldc) {
    return cublasGemmEx(handle, transa, transb, m, n, k, alpha, A, CUDA_R_32F, lda, B,
                        CUDA_R_32F, ldb, beta, C, CUDA_R_32F, ldc, CUBLAS_COMPUTE_32F,
                        CUBLAS_GEMM_DEFAULT);
}

} // extern "C"
