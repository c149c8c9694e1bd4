// Masked mean cross-entropy: only counted targets enter the loss and accuracy.
#pragma once
#include <cstdint>

#include "kernels/grad_store.h"

namespace attnlab {

struct LossResult {
    double loss = 0.0;  // mean cross-entropy over counted targets (0 if none)
    long counted = 0;   // number of counted targets
    long correct = 0;   // counted targets whose argmax prediction is right
};

// probs (N, V) receives softmax(logits); row_loss (N) the cross-entropy of every
// row and correct (N) 1/0 (argmax == target), counted or not. N = B*T.
LossResult cross_entropy_forward(float* probs, float* row_loss, uint8_t* correct,
                                 const float* logits, const int32_t* targets,
                                 const uint8_t* counted, int N, int V);
// dlogits (= or +=, `store`) (probs - onehot(target)) / counted for counted rows, 0 for others.
void cross_entropy_backward(float* dlogits, const float* probs, const int32_t* targets,
                            const uint8_t* counted, long n_counted, int N, int V,
                            GradStore store = GradStore::add);

}  // namespace attnlab
