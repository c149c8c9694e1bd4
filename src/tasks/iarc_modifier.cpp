// The `iarc` modifier variant: a control token every gap_min..gap_max positions;
// task tokens set the rule (I, A, R) and reset the modifier m, C adds one to m.
#include "tasks/iarc_modifier.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>

#include "core/error.h"
#include "tasks/options.h"

namespace attnlab {
namespace {

enum Letter : int { letter_i = 0, letter_a = 1, letter_r = 2, letter_c = 3 };

// Incremental view of a stream as the rules see it: the data history D (values and
// stream positions), the current task with its token's position, the modifier m, and
// for R the snapshot length |Z| and the count k. O(1) per token.
class ModifierState {
  public:
    struct Outcome {
        bool from_rule;  // false: the rule has nothing to read (R with |Z| < k)
        int32_t value;
        int32_t first_read;  // earliest stream position the value depends on
    };

    void reset(int n) {
        n_ = n;
        dval_.clear();
        dpos_.clear();
        task_ = -1;
        task_pos_ = -1;
        m_ = 0;
        k_ = 0;
        zlen_ = 0;
    }

    bool has_task() const { return task_ >= 0; }
    int task() const { return task_; }
    int32_t m() const { return m_; }

    // A task token: set the task, m = 0, and (for R) snapshot Z = D as it stands.
    void push_task(int task, int pos) {
        task_ = task;
        task_pos_ = pos;
        m_ = 0;
        k_ = 0;
        zlen_ = int(dval_.size());
    }
    // C: m = m + 1; the task, Z and k are unchanged.
    void push_modifier() { m_++; }

    Outcome predict() const {
        const int size = int(dval_.size());
        constexpr Outcome none{false, 0, -1};
        // Values are reduced mod N before m is added, so a large m cannot overflow.
        const int32_t shift = m_ % n_;
        switch (task_) {
            case letter_i:  // y = D[-1] + 1 + m
                if (size < 1) return none;
                return {true, (dval_[size - 1] + 1 + shift) % n_,
                        std::min(task_pos_, dpos_[size - 1])};
            case letter_a:  // y = D[-1] + D[-2] + m
                if (size < 2) return none;
                return {true, (dval_[size - 1] + dval_[size - 2] + shift) % n_,
                        std::min(task_pos_, dpos_[size - 2])};
            case letter_r: {  // y = Z[-k] + m; Z[-k] precedes the task token
                const int k = k_ + 1;
                if (zlen_ < k) return none;
                return {true, (dval_[zlen_ - k] + shift) % n_, dpos_[zlen_ - k]};
            }
            default:
                return none;
        }
    }

    void push_data(int32_t value, int pos) {
        dval_.push_back(value);
        dpos_.push_back(pos);
        if (task_ >= 0) k_++;
    }

  private:
    int n_ = 0;
    std::vector<int32_t> dval_;  // D
    std::vector<int32_t> dpos_;  // stream position of each D entry
    int task_ = -1;              // current task 0..2, -1 before the first task token
    int32_t task_pos_ = -1;
    int32_t m_ = 0;
    int k_ = 0;     // data tokens since the task token
    int zlen_ = 0;  // |Z| for R
};

// Per-thread buffers reused across windows: sampling allocates nothing once warm.
struct Scratch {
    ModifierState state;
    std::vector<int32_t> stream;
    std::vector<ModifierTrace> trace;
};
thread_local Scratch scratch;

// The trace of the next data token, given what the rules say and the value it has.
ModifierTrace data_trace(const ModifierState& state, const ModifierState::Outcome& o) {
    if (!state.has_task()) return {IarcSource::initial, -1, 0, -1};
    const int8_t task = int8_t(state.task());
    return o.from_rule ? ModifierTrace{IarcSource::rule, task, state.m(), o.first_read}
                       : ModifierTrace{IarcSource::random, task, state.m(), -1};
}

}  // namespace

void trace_modifier_stream(std::span<const int32_t> stream, int n,
                           std::vector<ModifierTrace>& trace) {
    ModifierState& state = scratch.state;
    state.reset(n);
    trace.resize(stream.size());
    for (size_t i = 0; i < stream.size(); i++) {
        const int pos = int(i);
        const int32_t v = stream[i];
        if (v < 0 || v >= n + 4)
            throw Error(fmt::format("iarc stream position {}: token {} is out of range 0..{}", pos,
                                    v, n + 3));
        if (v >= n) {
            const int letter = v - n;
            if (letter == letter_c) {
                if (!state.has_task())
                    throw Error(fmt::format(
                        "iarc stream position {}: C comes before the first task token", pos));
                state.push_modifier();
            } else {
                state.push_task(letter, pos);
            }
            trace[i] = {IarcSource::control, int8_t(letter), 0, -1};
            continue;
        }
        const ModifierState::Outcome o = state.predict();
        if (state.has_task() && o.from_rule && o.value != v)
            throw Error(fmt::format(
                "iarc stream position {}: token {} contradicts rule {} with m = {}, which gives {}",
                pos, v, iarc_letters[state.task()], state.m(), o.value));
        trace[i] = data_trace(state, o);
        state.push_data(v, pos);
    }
}

void annotate_modifier_window(std::span<const ModifierTrace> trace, int start, int T,
                              const std::array<int8_t, 4>& label_of_letter, uint8_t* counted,
                              int8_t* label) {
    if (start < 0 || T < 0 || size_t(start) + size_t(T) + 1 > trace.size())
        throw Error(fmt::format("iarc window [{}, {}] does not fit a stream of {} tokens", start,
                                start + T, trace.size()));
    for (int t = 0; t < T; t++) {
        const ModifierTrace& tr = trace[start + t + 1];
        // Everything the rule reads, the task token and every C since it precede the
        // target, and the window holds every position from `start` on.
        counted[t] = tr.source == IarcSource::rule && tr.first_read >= start;
        const bool data = tr.source == IarcSource::rule || tr.source == IarcSource::random;
        label[t] = !data ? int8_t(-1) : label_of_letter[tr.m > 0 ? int(letter_c) : int(tr.letter)];
    }
}

IarcModifierTask::IarcModifierTask(const TaskConfig& cfg)
    : n_(cfg.n), gap_min_(cfg.gap_min), gap_max_(cfg.gap_max), p_c_(cfg.p_c) {
    label_of_letter_.fill(-1);
    int8_t next = 0;
    for (int r = 0; r < 4; r++) {
        if (cfg.tasks.find(iarc_letters[r]) == std::string::npos) continue;
        label_of_letter_[r] = next++;
        if (r != letter_c) tasks_.push_back(r);
    }
    c_enabled_ = label_of_letter_[letter_c] >= 0;
}

std::vector<std::string> IarcModifierTask::label_names() const {
    std::vector<std::string> names;
    for (int r = 0; r < 4; r++)
        if (label_of_letter_[r] >= 0) names.emplace_back(1, iarc_letters[r]);
    return names;
}

std::string IarcModifierTask::token_text(int32_t token) const {
    if (token >= n_ && token < n_ + 4) return std::string(1, iarc_letters[token - n_]);
    return std::to_string(token);
}

void IarcModifierTask::generate_stream(Rng& rng, int length, std::vector<int32_t>& stream,
                                       std::vector<ModifierTrace>& trace) const {
    ModifierState& state = scratch.state;
    state.reset(n_);
    stream.resize(size_t(length));
    trace.resize(size_t(length));
    int pos = 0;
    // Two uniform random data tokens open the stream.
    for (; pos < std::min(2, length); pos++) {
        const int32_t v = int32_t(rng.below(uint32_t(n_)));
        stream[pos] = v;
        trace[pos] = {IarcSource::initial, -1, 0, -1};
        state.push_data(v, pos);
    }
    const uint32_t num_tasks = uint32_t(tasks_.size());
    const uint32_t num_gaps = uint32_t(gap_max_ - gap_min_ + 1);
    while (pos < length) {
        // A control token: the first is a task token, later ones C with probability p_c.
        const bool modifier = state.has_task() && c_enabled_ && rng.uniform() < p_c_;
        const int letter = modifier ? int(letter_c) : tasks_[rng.below(num_tasks)];
        stream[pos] = n_ + letter;
        trace[pos] = {IarcSource::control, int8_t(letter), 0, -1};
        if (modifier)
            state.push_modifier();
        else
            state.push_task(letter, pos);
        pos++;
        // g - 1 data tokens, g uniform in gap_min..gap_max: the next control is g away.
        const int g = gap_min_ + int(rng.below(num_gaps));
        for (int j = 1; j < g && pos < length; j++, pos++) {
            const ModifierState::Outcome o = state.predict();
            const int32_t v = o.from_rule ? o.value : int32_t(rng.below(uint32_t(n_)));
            stream[pos] = v;
            trace[pos] = data_trace(state, o);
            state.push_data(v, pos);
        }
    }
}

void IarcModifierTask::sample(Rng& rng, int T, int32_t* tokens, uint8_t* counted,
                              int8_t* label) const {
    const int offset = 2 * gap_max_ + int(rng.below(uint32_t(2 * gap_max_ + 1)));
    Scratch& s = scratch;
    generate_stream(rng, offset + T + 1, s.stream, s.trace);
    std::copy(s.stream.begin() + offset, s.stream.begin() + offset + T + 1, tokens);
    annotate_modifier_window(s.trace, offset, T, label_of_letter_, counted, label);
}

std::unique_ptr<Task> make_iarc_modifier_task(const TaskConfig& cfg) {
    using namespace task_options;
    check_range("n", cfg.n, 2, 1000);
    check_iarc_tasks(cfg.tasks);
    if (cfg.tasks.find_first_of("IAR") == std::string::npos)
        fail("tasks", "\"" + cfg.tasks + "\"",
             "is invalid for task.variant = \"modifier\": C modifies a task, so at least one of "
             "I, A, R must be enabled (e.g. \"IARC\", \"AC\")");
    if (!(cfg.p_c >= 0 && cfg.p_c <= 1))
        fail("p_c", fmt::format("{}", cfg.p_c), "is out of range: must be in [0, 1]");
    check_range("gap_min", cfg.gap_min, 1, 1000);
    if (cfg.gap_max < cfg.gap_min || cfg.gap_max > 1000)
        fail("gap_max", std::to_string(cfg.gap_max),
             fmt::format("is out of range: must be task.gap_min..1000 = {}..1000", cfg.gap_min));
    return std::make_unique<IarcModifierTask>(cfg);
}

}  // namespace attnlab
