// Softmax cross-entropy over the vocabulary, masked by the counted flags; the
// exponentials are vectorised (fast_exp, about 2 ulp).
#include "kernels/loss.h"

#include <algorithm>
#include <cmath>

#include "core/profile.h"
#include "kernels/fastmath.h"

namespace attnlab {

LossResult cross_entropy_forward(float* probs, float* row_loss, uint8_t* correct,
                                 const float* logits, const int32_t* targets,
                                 const uint8_t* counted, int N, int V) {
    const ProfileScope prof(KernelFamily::loss);
    double loss = 0.0;
    long n_counted = 0, n_correct = 0;
#pragma omp parallel for schedule(static) reduction(+ : n_counted, n_correct)
    for (int n = 0; n < N; n++) {
        const float* x = logits + size_t(n) * V;
        float* p = probs + size_t(n) * V;
        float mx = -INFINITY;
        int arg = 0;
        for (int v = 0; v < V; v++)
            if (x[v] > mx) mx = x[v], arg = v;
        float z = 0.0f;
#pragma omp simd reduction(+ : z)
        for (int v = 0; v < V; v++) z += (p[v] = fast_exp(x[v] - mx));
        const float inv = 1.0f / z;
        for (int v = 0; v < V; v++) p[v] *= inv;
        row_loss[n] = std::log(z) + mx - x[targets[n]];  // -log softmax(x)[target]
        correct[n] = arg == targets[n];
        if (counted[n]) n_counted++, n_correct += correct[n];
    }
    // The loss sum runs serially in double: its value must not depend on the thread count.
    for (int n = 0; n < N; n++)
        if (counted[n]) loss += row_loss[n];
    LossResult r;
    r.counted = n_counted;
    r.correct = n_correct;
    r.loss = n_counted > 0 ? loss / double(n_counted) : 0.0;
    return r;
}

void cross_entropy_backward(float* dlogits, const float* probs, const int32_t* targets,
                            const uint8_t* counted, long n_counted, int N, int V, GradStore store) {
    const ProfileScope prof(KernelFamily::loss);
    const bool add = store == GradStore::add;
    const float inv = n_counted > 0 ? 1.0f / float(n_counted) : 0.0f;
#pragma omp parallel for schedule(static)
    for (int n = 0; n < N; n++) {
        const float* p = probs + size_t(n) * V;
        float* d = dlogits + size_t(n) * V;
        const float scale = counted[n] ? inv : 0.0f;  // uncounted rows: no gradient
        if (!add) std::fill(d, d + V, 0.0f);
        for (int v = 0; v < V; v++) d[v] += p[v] * scale;
        if (counted[n]) d[targets[n]] -= scale;  // uncounted targets may be anything
    }
}

}  // namespace attnlab
