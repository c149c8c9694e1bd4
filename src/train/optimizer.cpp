// One optimizer step over the parameter arena.
#include "train/optimizer.h"

namespace attnlab {

Optimizer::StepInfo Optimizer::step(Model& model) {
    StepInfo info;
    info.lr = learning_rate(cfg_, step_);
    // Padding between tensors stays zero, so the norm over the whole arena is the
    // norm over all parameters.
    info.grad_norm = grad_norm(model.grads().data(), model.grads().size());
    float scale = 1.0f;
    if (cfg_.clip > 0) {
        const double coef = cfg_.clip / (info.grad_norm + 1e-6);
        if (coef < 1.0) scale = float(coef);
    }
    step_++;
    for (const auto& p : model.table().entries())
        adamw_update(model.params().data() + p.offset, model.grads().data() + p.offset,
                     m_.data() + p.offset, v_.data() + p.offset, p.size, info.lr, cfg_, step_,
                     p.decay, scale);
    return info;
}

}  // namespace attnlab
