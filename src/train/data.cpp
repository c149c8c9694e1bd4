// Batch assembly and evaluation.
#include "train/data.h"

#include <algorithm>
#include <cmath>

#include "core/rng.h"

namespace attnlab {

uint64_t training_data_seed(uint64_t seed) {
    uint64_t x = seed ^ 0x7261696E64617461ull;  // a fixed tag separates data from init
    return Rng::splitmix64(x);
}

BatchData::BatchData(int B_, int T_)
    : B(B_),
      T(T_),
      tokens(size_t(B_) * (T_ + 1)),
      inputs(size_t(B_) * T_),
      targets(inputs.size()),
      counted(inputs.size()),
      labels(inputs.size()) {}

void BatchData::fill(const Task& task, uint64_t seed, uint64_t first_index) {
    task.check_window(T);  // throws here, not inside the parallel loop
    const Rng base(seed);
#pragma omp parallel for schedule(static)
    for (int b = 0; b < B; b++) {
        Rng rng = base.split(first_index + uint64_t(b));
        int32_t* tok = tokens.data() + size_t(b) * (T + 1);
        task.sample(rng, T, tok, counted.data() + size_t(b) * T, labels.data() + size_t(b) * T);
        std::copy(tok, tok + T, inputs.data() + size_t(b) * T);
        std::copy(tok + 1, tok + T + 1, targets.data() + size_t(b) * T);
    }
}

EvalSet::EvalSet(const Task& task, uint64_t seed, int windows, int T)
    : label_names_(task.label_names()), byte_level_(task.byte_level()), windows_(windows), T_(T) {
    BatchData all(windows, T);
    all.fill(task.eval_task(), seed, 0);
    inputs_ = std::move(all.inputs);
    targets_ = std::move(all.targets);
    counted_ = std::move(all.counted);
    labels_ = std::move(all.labels);
}

EvalSums EvalSet::sums(Model& model, int first, int last) const {
    EvalSums s;
    const size_t L = label_names_.size();
    s.label_correct.assign(L, 0);
    s.label_counted.assign(L, 0);
    for (int w = first; w < last; w += model.max_batch()) {
        const int rows = std::min(model.max_batch(), last - w);
        const size_t off = size_t(w) * T_;
        const Batch b{inputs_.data() + off, targets_.data() + off, counted_.data() + off, rows, T_};
        const LossResult lr = model.forward(b);
        s.loss += lr.loss * double(lr.counted);
        s.counted += lr.counted;
        s.correct += lr.correct;
        for (size_t i = 0; i < size_t(rows) * T_; i++) {
            const int lab = labels_[off + i];
            if (!counted_[off + i] || lab < 0 || size_t(lab) >= L) continue;
            s.label_counted[size_t(lab)]++;
            s.label_correct[size_t(lab)] += model.correct()[i];
        }
    }
    return s;
}

EvalResult EvalSet::result(const EvalSums& s) const {
    EvalResult r;
    r.labels = label_names_;
    r.counted = s.counted;
    r.loss = s.counted ? s.loss / double(s.counted) : 0.0;
    r.accuracy = s.counted ? double(s.correct) / double(s.counted) : 0.0;
    if (byte_level_) r.bits_per_byte = r.loss / std::log(2.0);
    for (size_t l = 0; l < label_names_.size(); l++) {
        const long n = s.label_counted[l];
        r.label_counted.push_back(n);
        r.label_accuracy.push_back(n ? double(s.label_correct[l]) / double(n) : 0.0);
    }
    return r;
}

}  // namespace attnlab
