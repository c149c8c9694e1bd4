// The `ladder` and `multitask` tasks: sequences of the recurrence
// x_t = sum_i x_{t - tau_i} mod N with a random head of tau_max tokens.
#include "tasks/ladder.h"

#include <fmt/format.h>

#include <algorithm>

#include "tasks/options.h"

namespace attnlab {

std::vector<int> ladder_delays(int k) {
    std::vector<int> delays;
    for (int i = 0; i < k; i++) delays.push_back(1 << i);
    return delays;
}

void fill_ladder(Rng& rng, std::span<const int> delays, int n, int32_t* x, int len) {
    const int tau_max = *std::max_element(delays.begin(), delays.end());
    const int head = std::min(tau_max, len);
    for (int t = 0; t < head; t++) x[t] = int32_t(rng.below(uint32_t(n)));
    for (int t = head; t < len; t++) {
        // At most 16 delays of values < N <= 1000: the sum fits easily before the mod.
        int32_t sum = 0;
        for (int d : delays) sum += x[t - d];
        x[t] = sum % n;
    }
}

LadderTask::LadderTask(int n, std::vector<int> delays, std::string label)
    : n_(n),
      delays_(std::move(delays)),
      tau_max_(*std::max_element(delays_.begin(), delays_.end())),
      label_(std::move(label)) {}

void LadderTask::sample(Rng& rng, int T, int32_t* tokens, uint8_t* counted, int8_t* label) const {
    fill_ladder(rng, delays_, n_, tokens, T + 1);
    // x_0..x_{tau_max-1} are random; target t is x_{t+1}.
    for (int t = 0; t < T; t++) {
        counted[t] = t + 1 >= tau_max_;
        label[t] = 0;
    }
}

MultitaskTask::MultitaskTask(int n, std::vector<int> levels) : n_(n), levels_(std::move(levels)) {
    for (int k : levels_) delays_.push_back(ladder_delays(k));
}

std::vector<std::string> MultitaskTask::label_names() const {
    std::vector<std::string> names;
    for (int k : levels_) names.push_back(fmt::format("K{}", k));
    return names;
}

void MultitaskTask::sample(Rng& rng, int T, int32_t* tokens, uint8_t* counted,
                           int8_t* label) const {
    const int m = int(rng.below(uint32_t(levels_.size())));
    tokens[0] = n_ + m;
    fill_ladder(rng, delays_[m], n_, tokens + 1, T);
    // Sequence token x_t sits at window position t + 1, i.e. it is target t.
    const int tau_max = delays_[m].back();
    for (int t = 0; t < T; t++) {
        counted[t] = t >= tau_max;
        label[t] = int8_t(m);
    }
}

std::string MultitaskTask::token_text(int32_t token) const {
    if (token >= n_ && token < vocab()) return fmt::format("<K{}>", levels_[token - n_]);
    return std::to_string(token);
}

std::unique_ptr<Task> make_ladder_task(const TaskConfig& cfg) {
    using namespace task_options;
    check_range("n", cfg.n, 2, 1000);
    if (cfg.delays.empty()) {
        check_range("k", cfg.k, 1, 8);
        return std::make_unique<LadderTask>(cfg.n, ladder_delays(cfg.k), fmt::format("K{}", cfg.k));
    }
    check_int_list("delays", cfg.delays, 1, 16, 1, 1024, "delay");
    std::string label = "d";
    for (size_t i = 0; i < cfg.delays.size(); i++) {
        if (i) label += ',';
        label += std::to_string(cfg.delays[i]);
    }
    return std::make_unique<LadderTask>(cfg.n, cfg.delays, label);
}

std::unique_ptr<Task> make_multitask_task(const TaskConfig& cfg) {
    using namespace task_options;
    check_range("n", cfg.n, 2, 1000);
    check_int_list("levels", cfg.levels, 1, 8, 1, 8, "level");
    return std::make_unique<MultitaskTask>(cfg.n, cfg.levels);
}

}  // namespace attnlab
