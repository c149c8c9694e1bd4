// The `iarc` task: stream generation, the rules I, A, R, C, and the counted rule
// (a target is counted iff everything that determines it is visible in the window).
#include "tasks/iarc.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "tasks/iarc_modifier.h"
#include "tasks/options.h"

namespace attnlab {
namespace {

enum Rule : int { rule_i = 0, rule_a = 1, rule_r = 2, rule_c = 3 };

// Incremental view of a stream as the rules see it: the data history D (values and
// stream positions; control tokens skipped), the current segment, and for C the
// previous occurrence of D[-1]. One step costs O(1): no search, no allocation once
// the vectors have grown.
class RuleState {
  public:
    // The next data token of the current segment as its rule gives it, or from_rule =
    // false when the rule has nothing to read (the generator then draws uniformly).
    struct Outcome {
        bool from_rule;
        int32_t value;
        int32_t first_read;  // earliest stream position the value depends on
    };

    void reset(int n) {
        n_ = n;
        dval_.clear();
        dpos_.clear();
        last_.assign(size_t(n), -1);
        prev_of_last_ = -1;
        rule_ = -1;
        control_pos_ = -1;
        k_ = 0;
        zlen_ = 0;
    }

    bool in_segment() const { return rule_ >= 0; }

    void push_control(int rule, int pos) {
        rule_ = rule;
        control_pos_ = pos;
        k_ = 0;
        zlen_ = int(dval_.size());  // R spells Z = D as it stands now
    }

    Outcome predict() const {
        const int size = int(dval_.size());
        constexpr Outcome none{false, 0, -1};
        switch (rule_) {
            case rule_i:  // y = (D[-1] + 1) mod N
                if (size < 1) return none;
                return {true, (dval_[size - 1] + 1) % n_, std::min(control_pos_, dpos_[size - 1])};
            case rule_a:  // y = (D[-1] + D[-2]) mod N
                if (size < 2) return none;
                return {true, (dval_[size - 1] + dval_[size - 2]) % n_,
                        std::min(control_pos_, dpos_[size - 2])};
            case rule_r: {  // k-th token of the segment = Z[-k]; Z[-k] precedes the control token
                const int k = k_ + 1;
                if (zlen_ < k) return none;
                return {true, dval_[zlen_ - k], dpos_[zlen_ - k]};
            }
            case rule_c: {  // y = D[q + 1], q the latest earlier position with D[q] = D[-1]
                const int q = prev_of_last_;
                if (q < 0) return none;
                // Reads D[q] < D[q + 1] <= D[-1]: the earliest is D[q].
                return {true, dval_[q + 1], std::min(control_pos_, dpos_[q])};
            }
            default:
                return none;
        }
    }

    void push_data(int32_t value, int pos) {
        // Before appending, last_[value] is the latest occurrence of value; once value
        // is D[-1] that is exactly the q the C rule needs.
        prev_of_last_ = last_[value];
        last_[value] = int32_t(dval_.size());
        dval_.push_back(value);
        dpos_.push_back(pos);
        if (rule_ >= 0) k_++;
    }

  private:
    int n_ = 0;
    std::vector<int32_t> dval_;  // D
    std::vector<int32_t> dpos_;  // stream position of each D entry
    std::vector<int32_t> last_;  // value -> latest index in D, -1 if never
    int32_t prev_of_last_ = -1;  // index in D of the previous occurrence of D[-1]
    int rule_ = -1;              // current segment's rule, -1 before the first control
    int control_pos_ = -1;
    int k_ = 0;     // data tokens of the current segment so far
    int zlen_ = 0;  // |Z| for R
};

// Per-thread buffers reused across windows, so sampling allocates nothing once warm
// (the trainer may sample from several threads at once).
struct Scratch {
    RuleState state;
    std::vector<int32_t> stream;
    std::vector<IarcTrace> trace;
};
thread_local Scratch scratch;

}  // namespace

void trace_iarc_stream(std::span<const int32_t> stream, int n, std::vector<IarcTrace>& trace) {
    RuleState& state = scratch.state;
    state.reset(n);
    trace.resize(stream.size());
    int rule = -1;
    for (size_t i = 0; i < stream.size(); i++) {
        const int pos = int(i);
        const int32_t v = stream[i];
        if (v < 0 || v >= n + 4)
            throw Error(fmt::format("iarc stream position {}: token {} is out of range 0..{}", pos,
                                    v, n + 3));
        if (v >= n) {
            rule = v - n;
            state.push_control(rule, pos);
            trace[i] = {IarcSource::control, int8_t(rule), -1};
            continue;
        }
        if (!state.in_segment()) {
            trace[i] = {IarcSource::initial, -1, -1};
        } else {
            const RuleState::Outcome o = state.predict();
            if (o.from_rule && o.value != v)
                throw Error(fmt::format(
                    "iarc stream position {}: token {} contradicts rule {}, which gives {}", pos, v,
                    iarc_letters[rule], o.value));
            trace[i] = o.from_rule ? IarcTrace{IarcSource::rule, int8_t(rule), o.first_read}
                                   : IarcTrace{IarcSource::random, int8_t(rule), -1};
        }
        state.push_data(v, pos);
    }
}

void annotate_iarc_window(std::span<const IarcTrace> trace, int start, int T,
                          const std::array<int8_t, 4>& label_of_rule, uint8_t* counted,
                          int8_t* label) {
    if (start < 0 || T < 0 || size_t(start) + size_t(T) + 1 > trace.size())
        throw Error(fmt::format("iarc window [{}, {}] does not fit a stream of {} tokens", start,
                                start + T, trace.size()));
    for (int t = 0; t < T; t++) {
        const IarcTrace& tr = trace[start + t + 1];
        // Everything a rule reads precedes the target, and the window holds every
        // position from start on, so "inside the window before t" is first_read >= start.
        // Position `start` is the window's first token: an input only, but visible.
        counted[t] = tr.source == IarcSource::rule && tr.first_read >= start;
        const bool data = tr.source == IarcSource::rule || tr.source == IarcSource::random;
        label[t] = data ? label_of_rule[tr.rule] : int8_t(-1);
    }
}

IarcTask::IarcTask(const TaskConfig& cfg) : n_(cfg.n), l_max_(cfg.l_max) {
    label_of_rule_.fill(-1);
    for (int r = 0; r < 4; r++) {
        if (cfg.tasks.find(iarc_letters[r]) == std::string::npos) continue;
        label_of_rule_[r] = int8_t(enabled_.size());
        enabled_.push_back(r);
    }
    // Binomial(L, p) pmf for l = 1..L, p = mu / L, then conditioned on l > 0 by
    // normalising over l >= 1. Logs are shifted by their maximum before exp, so even a
    // tiny mu (where every pmf value would underflow) gives the right limit, l = 1.
    const int L = l_max_;
    const double p = cfg.mu / L;
    std::vector<double> weight(L);  // log pmf, then pmf / max pmf
    for (int l = 1; l <= L; l++) {
        const double log_choose =
            std::lgamma(L + 1.0) - std::lgamma(l + 1.0) - std::lgamma(L - l + 1.0);
        // p = 1 (mu = l_max): only l = L is possible; avoid 0 * log(0).
        const double log_q_part = l == L ? 0.0 : (L - l) * std::log1p(-std::min(p, 1.0));
        weight[l - 1] = log_choose + l * std::log(p) + log_q_part;
    }
    const double top = *std::max_element(weight.begin(), weight.end());
    double total = 0;
    for (double& w : weight) {
        w = std::exp(w - top);
        total += w;
    }
    length_cdf_.resize(L);
    double acc = 0;
    for (int i = 0; i < L; i++) {
        acc += weight[i];
        length_cdf_[i] = acc / total;
    }
    length_cdf_.back() = 1.0;  // uniform() < 1, so the search below always stops
}

std::vector<std::string> IarcTask::label_names() const {
    std::vector<std::string> names;
    for (int r : enabled_) names.emplace_back(1, iarc_letters[r]);
    return names;
}

std::string IarcTask::token_text(int32_t token) const {
    if (token >= n_ && token < n_ + 4) return std::string(1, iarc_letters[token - n_]);
    return std::to_string(token);
}

int IarcTask::draw_length(Rng& rng) const {
    const double u = rng.uniform();
    int i = 0;
    while (u >= length_cdf_[i]) i++;
    return i + 1;
}

void IarcTask::generate_stream(Rng& rng, int length, std::vector<int32_t>& stream,
                               std::vector<IarcTrace>& trace) const {
    RuleState& state = scratch.state;
    state.reset(n_);
    stream.resize(size_t(length));
    trace.resize(size_t(length));
    int pos = 0;
    // Two uniform random data tokens open the stream.
    for (; pos < std::min(2, length); pos++) {
        const int32_t v = int32_t(rng.below(uint32_t(n_)));
        stream[pos] = v;
        trace[pos] = {IarcSource::initial, -1, -1};
        state.push_data(v, pos);
    }
    const uint32_t num_enabled = uint32_t(enabled_.size());
    while (pos < length) {
        // A segment: a control token drawn uniformly from the enabled rules, then l data tokens.
        const int rule = enabled_[rng.below(num_enabled)];
        stream[pos] = n_ + rule;
        trace[pos] = {IarcSource::control, int8_t(rule), -1};
        state.push_control(rule, pos);
        pos++;
        const int l = draw_length(rng);
        for (int j = 0; j < l && pos < length; j++, pos++) {
            const RuleState::Outcome o = state.predict();
            const int32_t v = o.from_rule ? o.value : int32_t(rng.below(uint32_t(n_)));
            stream[pos] = v;
            trace[pos] = o.from_rule ? IarcTrace{IarcSource::rule, int8_t(rule), o.first_read}
                                     : IarcTrace{IarcSource::random, int8_t(rule), -1};
            state.push_data(v, pos);
        }
    }
}

void IarcTask::sample(Rng& rng, int T, int32_t* tokens, uint8_t* counted, int8_t* label) const {
    // A fresh stream per window, started far enough back (>= 2 l_max tokens) that the
    // window does not see the stream's opening; the random part of the offset puts the
    // window start at a random phase of the segment structure.
    const int offset = 2 * l_max_ + int(rng.below(uint32_t(2 * l_max_ + 1)));
    Scratch& s = scratch;
    generate_stream(rng, offset + T + 1, s.stream, s.trace);
    std::copy(s.stream.begin() + offset, s.stream.begin() + offset + T + 1, tokens);
    annotate_iarc_window(s.trace, offset, T, label_of_rule_, counted, label);
}

void check_iarc_tasks(const std::string& tasks) {
    bool seen[4] = {false, false, false, false};
    bool tasks_ok = !tasks.empty();
    for (char c : tasks) {
        const auto it = std::find(iarc_letters.begin(), iarc_letters.end(), c);
        if (it == iarc_letters.end() || seen[it - iarc_letters.begin()]) {
            tasks_ok = false;
            break;
        }
        seen[it - iarc_letters.begin()] = true;
    }
    if (!tasks_ok)
        task_options::fail("tasks", "\"" + tasks + "\"",
                           "is invalid: must be a non-empty subset of the letters I, A, R, C, each "
                           "at most once (e.g. \"IARC\", \"AC\")");
}

std::unique_ptr<Task> make_iarc_task(const TaskConfig& cfg) {
    using namespace task_options;
    if (cfg.variant == "modifier") return make_iarc_modifier_task(cfg);
    if (cfg.variant != "lookup")
        fail("variant", "\"" + cfg.variant + "\"",
             "is unknown: valid variants are lookup, modifier");
    check_range("n", cfg.n, 2, 1000);
    check_iarc_tasks(cfg.tasks);
    check_range("l_max", cfg.l_max, 1, 1000);
    if (!(cfg.mu > 0 && cfg.mu <= cfg.l_max))
        fail("mu", fmt::format("{}", cfg.mu),
             fmt::format("is out of range: must be in (0, task.l_max] = (0, {}]", cfg.l_max));
    return std::make_unique<IarcTask>(cfg);
}

}  // namespace attnlab
