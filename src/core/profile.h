// Optional time per kernel family for `attnlab bench`: kernels open a
// ProfileScope naming their family. Off by default; then a scope is one
// predictable branch on a global flag and never reads the clock.
#pragma once
#include <array>
#include <chrono>
#include <cstdint>

namespace attnlab {

enum class KernelFamily {
    attention,   // scores, map, weighted values (forward and backward)
    matmul,      // linear layers and other gemm work
    norm,        // LayerNorm / RMSNorm
    activation,  // GELU, ReLU, SwiGLU, the LSTM cell
    loss,        // softmax cross-entropy
    optimizer,   // gradient norm, clipping, AdamW
    embedding,   // token and positional embeddings, windows, residual adds
    data,        // task sampling into the batch
    count
};
constexpr int kKernelFamilies = int(KernelFamily::count);
const char* kernel_family_name(KernelFamily f);

namespace profile {

extern bool g_enabled;

inline bool enabled() {
    return g_enabled;
}
void set_enabled(bool on);
// Clears the accumulated times (of every thread).
void reset();
// Exclusive seconds of a family accumulated by thread `thread` since reset().
double seconds(KernelFamily f, int thread = 0);
// Calls counted per family (thread `thread`).
uint64_t calls(KernelFamily f, int thread = 0);

// Scopes nest: an inner scope's time is charged to the inner family only.
void enter(KernelFamily f);
void leave();

}  // namespace profile

class ProfileScope {
  public:
    explicit ProfileScope(KernelFamily f) : on_(profile::enabled()) {
        if (on_) profile::enter(f);
    }
    ~ProfileScope() {
        if (on_) profile::leave();
    }
    ProfileScope(const ProfileScope&) = delete;
    ProfileScope& operator=(const ProfileScope&) = delete;

  private:
    bool on_;
};

}  // namespace attnlab
