// The `iarc` task: a stream of segments, each a control token (I, A, R or C)
// followed by data tokens produced by that task's rule (docs/tasks.md).
#pragma once
#include <array>
#include <cstdint>
#include <span>
#include <string>
#include <vector>

#include "tasks/task.h"

namespace attnlab {

// The four rules, in the canonical order of their control tokens: I = N, A = N+1, R = N+2, C = N+3.
inline constexpr std::array<char, 4> iarc_letters{'I', 'A', 'R', 'C'};

// What produced one stream token.
enum class IarcSource : uint8_t {
    initial,  // one of the uniform random data tokens that open the stream
    control,  // a control token (opens a segment)
    rule,     // a data token computed by its segment's rule
    random,   // a data token of a segment whose rule had nothing to read (R: Z too short; C: x new)
};

// Per stream token: its source, its segment's rule (0..3 = I, A, R, C; -1 for initial
// tokens) and, for rule tokens, the earliest stream position it depends on: the
// segment's control token or a data token the rule read (D[-1], D[-2], Z[-k] or D[q]).
// A target is counted iff source == rule and first_read lies inside the window;
// everything the rule reads precedes the target, so "before t" holds by construction.
struct IarcTrace {
    IarcSource source = IarcSource::initial;
    int8_t rule = -1;
    int32_t first_read = -1;
};

// Re-derives the trace of a whole stream given from its start (token 0 is the
// stream's first token): data tokens before the first control token are `initial`;
// a rule whose reads do not exist (R with Z shorter than k, C with x never seen,
// and, only possible in hand-made streams, I or A without enough history) gives
// `random`. Throws Error if a token is out of range 0..n+3 or a rule token
// contradicts its rule.
void trace_iarc_stream(std::span<const int32_t> stream, int n, std::vector<IarcTrace>& trace);

// Counted flags and labels of the window stream[start .. start + T]: target t is
// stream token start + t + 1. label_of_rule maps a rule 0..3 to its label index
// (-1 when the rule is not enabled). Data targets get their segment's label whether
// counted or not; control tokens get -1.
void annotate_iarc_window(std::span<const IarcTrace> trace, int start, int T,
                          const std::array<int8_t, 4>& label_of_rule, uint8_t* counted,
                          int8_t* label);

class IarcTask final : public Task {
  public:
    // cfg must be valid (make_iarc_task validates it).
    explicit IarcTask(const TaskConfig& cfg);

    std::string name() const override { return "iarc"; }
    int vocab() const override { return n_ + 4; }
    // The enabled rules' letters in canonical order I, A, R, C (task.tasks = "CA" gives
    // {"A", "C"}); a label is an index into this list.
    std::vector<std::string> label_names() const override;
    // The window starts at a uniform random offset in [2 l_max, 4 l_max] of a fresh stream.
    void sample(Rng& rng, int T, int32_t* tokens, uint8_t* counted, int8_t* label) const override;
    std::string token_text(int32_t token) const override;

    // Generates the first `length` tokens of a stream with their trace (the trace equals
    // what trace_iarc_stream derives from the tokens). Exposed for tests and analysis.
    void generate_stream(Rng& rng, int length, std::vector<int32_t>& stream,
                         std::vector<IarcTrace>& trace) const;

    const std::array<int8_t, 4>& label_of_rule() const { return label_of_rule_; }

  private:
    // Segment length l ~ Binomial(l_max, mu / l_max) conditioned on l > 0, drawn by
    // inverting its cumulative distribution (same law as redrawing while l = 0).
    int draw_length(Rng& rng) const;

    int n_;
    int l_max_;
    std::vector<int> enabled_;             // enabled rules 0..3, canonical order
    std::array<int8_t, 4> label_of_rule_;  // rule -> label index, -1 if disabled
    std::vector<double> length_cdf_;       // P(l <= i + 1 | l > 0), last entry exactly 1
};

// Throws Error naming task.tasks unless it is a non-empty subset of "IARC", each letter once.
void check_iarc_tasks(const std::string& tasks);

// Validates the iarc options and builds the task of task.variant: lookup (task.n,
// task.tasks, task.mu, task.l_max) or modifier (see make_iarc_modifier_task).
std::unique_ptr<Task> make_iarc_task(const TaskConfig& cfg);

}  // namespace attnlab
