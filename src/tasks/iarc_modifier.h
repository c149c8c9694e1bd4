// The `iarc` task, variant `modifier` (docs/tasks.md): task tokens I, A, R
// switch the rule; C modifies the current rule by adding one more to every value.
#pragma once
#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "tasks/iarc.h"
#include "tasks/task.h"

namespace attnlab {

// Per stream token: its source (IarcSource: initial, control, rule or random), its
// letter (control tokens: 0..3 = I, A, R, C; data tokens: the current task 0..2;
// initial tokens: -1), the modifier m in force (data tokens) and, for rule tokens, the
// earliest stream position the value depends on: the task token (every C since it
// comes later) or a data token the rule read (D[-1], D[-2] or Z[-k]).
// A target is counted iff source == rule and first_read lies inside the window.
struct ModifierTrace {
    IarcSource source = IarcSource::initial;
    int8_t letter = -1;
    int32_t m = 0;
    int32_t first_read = -1;
};

// Re-derives the trace of a whole stream given from its start. Data tokens before the
// first control token are `initial`; an R token with Z shorter than k is `random`.
// Throws Error if a token is out of range 0..n+3, a C comes before the first task
// token, or a rule token contradicts its rule.
void trace_modifier_stream(std::span<const int32_t> stream, int n,
                           std::vector<ModifierTrace>& trace);

// Counted flags and labels of the window stream[start .. start + T] (target t is stream
// token start + t + 1). label_of_letter maps I, A, R, C (0..3) to a label index (-1 when
// not enabled). Data targets are labelled whether counted or not: their task's letter
// when m = 0, C when m >= 1; control and initial tokens get -1.
void annotate_modifier_window(std::span<const ModifierTrace> trace, int start, int T,
                              const std::array<int8_t, 4>& label_of_letter, uint8_t* counted,
                              int8_t* label);

class IarcModifierTask final : public Task {
  public:
    // cfg must be valid (make_iarc_modifier_task validates it).
    explicit IarcModifierTask(const TaskConfig& cfg);

    std::string name() const override { return "iarc"; }
    int vocab() const override { return n_ + 4; }
    // The enabled letters in canonical order I, A, R, C; a label is an index into it.
    std::vector<std::string> label_names() const override;
    // The window starts at a uniform random offset in [2 gap_max, 4 gap_max] of a fresh
    // stream, as the lookup variant skips 2 l_max..4 l_max tokens.
    void sample(Rng& rng, int T, int32_t* tokens, uint8_t* counted, int8_t* label) const override;
    std::string token_text(int32_t token) const override;

    // The first `length` tokens of a stream with their trace (equal to what
    // trace_modifier_stream derives from the tokens). Exposed for tests and analysis.
    void generate_stream(Rng& rng, int length, std::vector<int32_t>& stream,
                         std::vector<ModifierTrace>& trace) const;

    const std::array<int8_t, 4>& label_of_letter() const { return label_of_letter_; }

  private:
    int n_;
    int gap_min_, gap_max_;
    double p_c_;
    bool c_enabled_;
    std::vector<int> tasks_;                 // enabled task letters among 0..2, canonical order
    std::array<int8_t, 4> label_of_letter_;  // letter -> label index, -1 if disabled
};

// Validates the modifier options (task.n, task.tasks with at least one of I, A, R,
// task.p_c, task.gap_min, task.gap_max) and builds the task.
std::unique_ptr<Task> make_iarc_modifier_task(const TaskConfig& cfg);

}  // namespace attnlab
