// The optimizer state of a model: AdamW moments with the arena's layout, the
// step counter, and one step = clip by global norm, schedule, update.
#pragma once
#include "core/arena.h"
#include "kernels/adamw.h"
#include "model/model.h"

namespace attnlab {

class Optimizer {
  public:
    Optimizer(const AdamWConfig& cfg, size_t arena_size)
        : cfg_(cfg), m_(arena_size), v_(arena_size) {}

    struct StepInfo {
        float lr = 0;
        double grad_norm = 0;  // before clipping
    };
    // Clips the model's gradients, applies one AdamW update to every tensor of its
    // table (decay on matrices only) and advances the step counter.
    StepInfo step(Model& model) { return step(model.table(), model.params(), model.grads()); }
    // The same for any parameter arena (the U-ViT's).
    StepInfo step(const ParamTable& table, Buffer& params, Buffer& grads);

    long steps_done() const { return step_; }
    void set_steps_done(long s) { step_ = s; }
    Buffer& m() { return m_; }
    Buffer& v() { return v_; }
    const AdamWConfig& config() const { return cfg_; }

  private:
    AdamWConfig cfg_;
    Buffer m_, v_;
    long step_ = 0;
};

}  // namespace attnlab
