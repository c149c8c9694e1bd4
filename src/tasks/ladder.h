// The `ladder` and `multitask` tasks: finite-domain recurrences
// x_t = (x_{t - tau_1} + ... + x_{t - tau_K}) mod N, one per window (docs/tasks.md).
#pragma once
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "tasks/task.h"

namespace attnlab {

// Delays of ladder level K: 1, 2, 4, ..., 2^(K-1).
std::vector<int> ladder_delays(int k);

// Fills x[0 .. len-1] with a fresh sequence: the first tau_max = max(delays) tokens
// uniform random in 0..n-1, then the recurrence.
void fill_ladder(Rng& rng, std::span<const int> delays, int n, int32_t* x, int len);

// One recurrence. Window tokens are x_0..x_T; target t is x_{t+1}, counted iff
// t + 1 >= tau_max. Every target carries label 0 (the task's single label), counted
// or not. With tau_max > T nothing is counted (T is a training option, so this cannot
// be rejected when the task is built).
class LadderTask final : public Task {
  public:
    // label: "K<k>" for a level, "d<d1>,<d2>,..." for explicit delays.
    LadderTask(int n, std::vector<int> delays, std::string label);

    std::string name() const override { return "ladder"; }
    int vocab() const override { return n_; }
    std::vector<std::string> label_names() const override { return {label_}; }
    void sample(Rng& rng, int T, int32_t* tokens, uint8_t* counted, int8_t* label) const override;

    const std::vector<int>& delays() const { return delays_; }
    int tau_max() const { return tau_max_; }

  private:
    int n_;
    std::vector<int> delays_;
    int tau_max_;
    std::string label_;
};

// M ladder levels at once. Window tokens: the task token N + m (m uniform in 0..M-1),
// then x_0..x_{T-1} of level levels[m]; target t is x_t, counted iff t >= tau_max(m)
// (the ladder rule shifted by the task token). Every target carries label m.
class MultitaskTask final : public Task {
  public:
    MultitaskTask(int n, std::vector<int> levels);

    std::string name() const override { return "multitask"; }
    int vocab() const override { return n_ + int(levels_.size()); }
    // "K<level>" per task, in the order of task.levels: {"K2", "K3", "K4"} by default.
    std::vector<std::string> label_names() const override;
    void sample(Rng& rng, int T, int32_t* tokens, uint8_t* counted, int8_t* label) const override;
    // Task tokens read "<K3>"; data tokens their number.
    std::string token_text(int32_t token) const override;

    const std::vector<int>& levels() const { return levels_; }

  private:
    int n_;
    std::vector<int> levels_;
    std::vector<std::vector<int>> delays_;  // per task
};

// Validate task.n and task.k or task.delays, and build the task.
std::unique_ptr<Task> make_ladder_task(const TaskConfig& cfg);
// Validate task.n and task.levels, and build the task.
std::unique_ptr<Task> make_multitask_task(const TaskConfig& cfg);

}  // namespace attnlab
