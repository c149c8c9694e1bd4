// Data parallelism: batch slices, loss and gradient sums, split evaluation.
#include "train/distributed.h"

#include <fmt/core.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <thread>
#include <vector>

#include "core/error.h"

namespace attnlab {

namespace {

// ATTNLAB_ALLREDUCE_BUCKET=N: allreduce the gradients in buckets of N floats
// (default 0: one call for the whole arena; see docs/performance.md).
size_t bucket_elems() {
    const char* v = std::getenv("ATTNLAB_ALLREDUCE_BUCKET");
    return v && *v ? size_t(std::strtoull(v, nullptr, 10)) : 0;
}

}  // namespace

int DataParallel::local_batch(int global_batch) const {
    const int R = ranks();
    if (global_batch % R != 0)
        throw Error(fmt::format(
            "train.batch = {} cannot be split over {} MPI ranks: the global batch must be a "
            "multiple of the rank count (e.g. train.batch = {} or {}, or mpirun -np {})",
            global_batch, R, global_batch / R * R > 0 ? global_batch / R * R : R,
            (global_batch / R + 1) * R, [&] {
                for (int r = R; r > 1; r--)
                    if (global_batch % r == 0) return r;
                return 1;
            }()));
    return global_batch / R;
}

int DataParallel::threads(int threads) const {
    if (threads > 0) return threads;
    const int cores = int(std::max(1u, std::thread::hardware_concurrency()));
    return std::max(1, cores / std::max(1, comm_.local_size()));
}

uint64_t DataParallel::first_window(long step, int global_batch) const {
    const int b = global_batch / ranks();
    return uint64_t(step) * uint64_t(global_batch) + uint64_t(rank()) * uint64_t(b);
}

LossResult DataParallel::global_loss(const LossResult& local) const {
    if (!comm_.distributed()) return local;
    double v[3] = {local.loss * double(local.counted), double(local.counted),
                   double(local.correct)};
    comm_.allreduce_sum(v, 3);
    LossResult g;
    g.counted = long(v[1]);
    g.correct = long(v[2]);
    g.loss = g.counted ? v[0] / v[1] : 0.0;
    return g;
}

void DataParallel::reduce_gradients(Model& model, long local_counted, long global_counted) {
    if (!comm_.distributed()) return;
    // Each rank's backward divided by its own counted targets; the global mean
    // loss divides by all of them: g = sum_r (n_r / n) g_r.
    float* g = model.grads().data();
    const size_t n = model.grads().size();
    const float scale =
        global_counted ? float(double(local_counted) / double(global_counted)) : 0.f;
    if (scale != 1.0f) {
#pragma omp parallel for simd schedule(static)
        for (size_t i = 0; i < n; i++) g[i] *= scale;
    }
    const auto t0 = std::chrono::steady_clock::now();
    comm_.allreduce_sum(g, n, bucket_elems());
    allreduce_s_ += std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
}

EvalResult DataParallel::evaluate(const EvalSet& set, Model& model) const {
    if (!comm_.distributed()) return set.evaluate(model);
    const int W = set.windows(), R = ranks();
    const int first = int(long(W) * rank() / R), last = int(long(W) * (rank() + 1) / R);
    EvalSums s = set.sums(model, first, last);
    // Everything as doubles in one allreduce (counts stay exact below 2^53).
    const size_t L = s.label_correct.size();
    std::vector<double> v{s.loss, double(s.counted), double(s.correct)};
    for (size_t l = 0; l < L; l++) v.push_back(double(s.label_correct[l]));
    for (size_t l = 0; l < L; l++) v.push_back(double(s.label_counted[l]));
    comm_.allreduce_sum(v.data(), v.size());
    s.loss = v[0], s.counted = long(v[1]), s.correct = long(v[2]);
    for (size_t l = 0; l < L; l++) {
        s.label_correct[l] = long(v[3 + l]);
        s.label_counted[l] = long(v[3 + L + l]);
    }
    return set.result(s);
}

void DataParallel::check_same_params(const Model& model) const {
    if (!comm_.distributed()) return;
    // FNV-1a over the bits of the parameters; max(h) == max(~h)'s complement iff all equal.
    const auto* bytes = reinterpret_cast<const unsigned char*>(model.params().data());
    uint64_t h = 1469598103934665603ull;
    for (size_t i = 0; i < model.params().size() * sizeof(float); i++)
        h = (h ^ bytes[i]) * 1099511628211ull;
    uint64_t v[2] = {h, ~h};
    comm_.allreduce_max(v, 2);
    if (v[0] != ~v[1])
        throw Error(
            "the MPI ranks hold different parameters; data-parallel training needs every rank "
            "to start from the same checkpoint and to run the same attnlab build");
}

}  // namespace attnlab
