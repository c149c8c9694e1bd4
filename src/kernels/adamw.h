// AdamW with decoupled weight decay on matrices, the learning-rate schedule
// (linear warm-up, then cosine or constant) and global-norm gradient clipping.
#pragma once
#include <cstddef>

namespace attnlab {

enum class Schedule { cosine, constant };

struct AdamWConfig {
    float lr = 1e-3f;  // peak learning rate
    float beta1 = 0.9f;
    float beta2 = 0.95f;
    float eps = 1e-8f;
    float weight_decay = 0.1f;  // applied to weight matrices only (ndim >= 2, not biases)
    int warmup = 100;           // linear warm-up steps
    int total_steps = 1000;     // cosine decays to min_lr_ratio * lr at this step
    Schedule schedule = Schedule::cosine;
    float min_lr_ratio = 0.1f;
    float clip = 1.0f;  // global-norm clip; 0 disables
};

// Learning rate of step s (0-based): lr (s+1)/warmup while s < warmup, then
// lr (r + (1-r) (1 + cos(pi p)) / 2), p = (s - warmup) / max(1, total - warmup),
// or lr for the constant schedule.
float learning_rate(const AdamWConfig& cfg, long step);

// sqrt(sum of squares) of n floats, summed in double in a fixed order.
double grad_norm(const float* grad, size_t n);

// One AdamW update of a parameter tensor, t = 1-based step number, lr already
// scheduled, grad already clipped: m = b1 m + (1-b1) g; v = b2 v + (1-b2) g^2;
// p -= lr wd p (if decay); p -= lr mhat / (sqrt(vhat) + eps).
void adamw_update(float* param, const float* grad, float* m, float* v, size_t n, float lr,
                  const AdamWConfig& cfg, long t, bool decay, float grad_scale);

}  // namespace attnlab
