// Per-thread accumulators of the kernel-family timer: each thread of the
// outermost OpenMP team owns one cache-line-aligned slot, so no two threads
// write the same memory and nothing is synchronised.
#include "core/profile.h"

#include <omp.h>

namespace attnlab {

const char* kernel_family_name(KernelFamily f) {
    switch (f) {
        case KernelFamily::attention:
            return "attention";
        case KernelFamily::matmul:
            return "matmul";
        case KernelFamily::norm:
            return "norm";
        case KernelFamily::activation:
            return "activation";
        case KernelFamily::loss:
            return "loss";
        case KernelFamily::optimizer:
            return "optimizer";
        case KernelFamily::embedding:
            return "embedding";
        case KernelFamily::data:
            return "data";
        case KernelFamily::count:
            break;
    }
    return "?";
}

namespace profile {

bool g_enabled = false;

namespace {

using Clock = std::chrono::steady_clock;
constexpr int kMaxSlots = 256;  // set_threads() clamps the thread count to this
constexpr int kMaxDepth = 16;

struct alignas(64) Slot {
    std::array<double, kKernelFamilies> seconds{};
    std::array<uint64_t, kKernelFamilies> calls{};
    std::array<KernelFamily, kMaxDepth> stack{};
    int depth = 0;
    Clock::time_point mark;
};

Slot g_slots[kMaxSlots];

// The thread's number in the outermost team: kernels called inside a parallel
// region open their own (inactive, one-thread) teams, where omp_get_thread_num() is 0.
Slot& my_slot() {
    const int id = omp_get_level() >= 1 ? omp_get_ancestor_thread_num(1) : 0;
    return g_slots[id < kMaxSlots ? id : kMaxSlots - 1];
}

}  // namespace

void set_enabled(bool on) {
    g_enabled = on;
}

void reset() {
    for (Slot& s : g_slots) s.seconds.fill(0.0), s.calls.fill(0), s.depth = 0;
}

double seconds(KernelFamily f, int thread) {
    return g_slots[thread].seconds[size_t(f)];
}
uint64_t calls(KernelFamily f, int thread) {
    return g_slots[thread].calls[size_t(f)];
}

void enter(KernelFamily f) {
    Slot& s = my_slot();
    const Clock::time_point now = Clock::now();
    if (s.depth > 0)
        s.seconds[size_t(s.stack[size_t(s.depth - 1)])] +=
            std::chrono::duration<double>(now - s.mark).count();
    if (s.depth < kMaxDepth) s.stack[size_t(s.depth)] = f;
    s.depth++;
    s.calls[size_t(f)]++;
    s.mark = now;
}

void leave() {
    Slot& s = my_slot();
    const Clock::time_point now = Clock::now();
    if (s.depth > 0 && s.depth <= kMaxDepth)
        s.seconds[size_t(s.stack[size_t(s.depth - 1)])] +=
            std::chrono::duration<double>(now - s.mark).count();
    if (s.depth > 0) s.depth--;
    s.mark = now;
}

}  // namespace profile

}  // namespace attnlab
