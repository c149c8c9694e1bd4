// Batches of task windows in preallocated buffers: training windows by index
// (so a resumed run sees exactly the windows it would have seen), and the
// fixed evaluation set.
#pragma once
#include <cstdint>
#include <optional>
#include <vector>

#include "model/model.h"
#include "tasks/task.h"

namespace attnlab {

struct BatchData {
    int B = 0, T = 0;
    std::vector<int32_t> tokens;           // (B, T + 1) scratch
    std::vector<int32_t> inputs, targets;  // (B, T)
    std::vector<uint8_t> counted;          // (B, T)
    std::vector<int8_t> labels;            // (B, T)

    BatchData(int B_, int T_);
    // Windows first_index .. first_index + B - 1 of the stream `seed`
    // (window i = sample_window(task, seed, i, T)); in parallel, no allocation.
    void fill(const Task& task, uint64_t seed, uint64_t first_index);
    Batch batch(int rows) const { return {inputs.data(), targets.data(), counted.data(), rows, T}; }
};

struct EvalResult {
    double loss = 0;      // mean cross-entropy over counted targets
    double accuracy = 0;  // over counted targets
    long counted = 0;
    std::vector<std::string> labels;  // task label names
    std::vector<double> label_accuracy;
    std::vector<long> label_counted;
    std::optional<double> bits_per_byte;  // byte-level tasks (text): loss / ln 2
};

// The fixed evaluation set: `windows` windows of seed `seed` drawn from
// task.eval_task() (for text: the validation part), evaluated in batches of the
// model's max batch.
// Sums over some windows of the evaluation set; the sums of disjoint parts add up
// (data-parallel evaluation adds them over the ranks).
struct EvalSums {
    double loss = 0;  // sum of per-target cross-entropy over counted targets
    long counted = 0, correct = 0;
    std::vector<long> label_correct, label_counted;
};

class EvalSet {
  public:
    EvalSet(const Task& task, uint64_t seed, int windows, int T);
    EvalResult evaluate(Model& model) const { return result(sums(model, 0, windows_)); }
    // Windows first .. last - 1, in batches of the model's max batch.
    EvalSums sums(Model& model, int first, int last) const;
    EvalResult result(const EvalSums& s) const;
    int windows() const { return windows_; }

  private:
    std::vector<std::string> label_names_;
    bool byte_level_;
    int windows_, T_;
    std::vector<int32_t> inputs_, targets_;
    std::vector<uint8_t> counted_;
    std::vector<int8_t> labels_;
};

// Seeds of the training windows derived from train.seed (the init uses train.seed itself).
uint64_t training_data_seed(uint64_t seed);

}  // namespace attnlab
