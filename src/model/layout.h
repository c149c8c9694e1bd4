// Helpers every model shares: carving activation buffers out of one allocation,
// and the check that a batch fits the sizes the model was built for.
#pragma once
#include <cstddef>
#include <string>

#include "core/error.h"
#include "model/model.h"

namespace attnlab {

// Carves named slices out of one buffer: a first pass with no base counts the
// floats, a second pass with the allocated base assigns the same offsets.
class Layout {
  public:
    float* take(size_t n) {
        float* p = base_ ? base_ + used_ : nullptr;
        used_ += (n + 15) / 16 * 16;  // 64-byte aligned slices
        return p;
    }
    void reset(float* base) { base_ = base, used_ = 0; }
    size_t used() const { return used_; }

  private:
    float* base_ = nullptr;
    size_t used_ = 0;
};

inline void check_batch_fits(const Batch& b, int max_batch, int context) {
    if (b.B < 1 || b.B > max_batch || b.T < 1 || b.T > context)
        throw Error("batch of " + std::to_string(b.B) + " x " + std::to_string(b.T) +
                    " exceeds the model's size " + std::to_string(max_batch) + " x " +
                    std::to_string(context));
}

}  // namespace attnlab
