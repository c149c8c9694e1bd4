// One optimizer step over the parameter arena.
#include "train/optimizer.h"

namespace attnlab {

Optimizer::StepInfo Optimizer::step(const ParamTable& table, Buffer& params, Buffer& grads) {
    StepInfo info;
    info.lr = learning_rate(cfg_, step_);
    // Padding between tensors stays zero, so the norm over the whole arena is the
    // norm over all parameters.
    info.grad_norm = grad_norm(grads.data(), grads.size());
    float scale = 1.0f;
    if (cfg_.clip > 0) {
        const double coef = cfg_.clip / (info.grad_norm + 1e-6);
        if (coef < 1.0) scale = float(coef);
    }
    step_++;
    for (const auto& p : table.entries())
        adamw_update(params.data() + p.offset, grads.data() + p.offset, m_.data() + p.offset,
                     v_.data() + p.offset, p.size, info.lr, cfg_, step_, p.decay, scale);
    return info;
}

}  // namespace attnlab
