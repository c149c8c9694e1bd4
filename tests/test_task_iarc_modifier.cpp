// Tests of the iarc modifier variant: the spec's worked example, and every rule,
// counted flag, label and gap re-derived from the visible window by a checker
// written here from docs/tasks.md (plain scans, no shared code with iarc_modifier.cpp).
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <sstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "tasks/iarc.h"
#include "tasks/iarc_modifier.h"
#include "tasks/sample.h"
#include "tasks/task.h"

namespace attnlab {
namespace {

TaskConfig modifier_config(int n = 16, const std::string& tasks = "IARC", double p_c = 0.25,
                           int gap_min = 3, int gap_max = 9) {
    TaskConfig cfg;
    cfg.variant = "modifier";
    cfg.n = n;
    cfg.tasks = tasks;
    cfg.p_c = p_c;
    cfg.gap_min = gap_min;
    cfg.gap_max = gap_max;
    return cfg;
}

// What the window alone says about the target at window position j.
struct Derived {
    bool determined = false;  // the rule's value follows from the window: must be counted
    int value = -1;
    char label = 0;  // 'I', 'A', 'R' (m = 0) or 'C' (m >= 1) if the task token is visible
};

Derived derive(const std::vector<int32_t>& tok, int n, int j) {
    Derived d;
    if (tok[j] >= n) return d;
    // The latest task token before j, counting the C tokens after it.
    int p = j - 1, m = 0;
    for (; p >= 0; p--) {
        if (tok[p] == n + 3) m++;
        if (tok[p] >= n && tok[p] < n + 3) break;
    }
    if (p < 0) return d;
    const char task = "IAR"[tok[p] - n];
    d.label = m == 0 ? task : 'C';
    std::vector<int> before;  // visible data values before j
    for (int i = 0; i < j; i++)
        if (tok[i] < n) before.push_back(tok[i]);
    const int s = int(before.size());
    if (task == 'I' && s >= 1) d.determined = true, d.value = (before[s - 1] + 1 + m) % n;
    if (task == 'A' && s >= 2)
        d.determined = true, d.value = (before[s - 1] + before[s - 2] + m) % n;
    if (task == 'R') {
        std::vector<int> z;  // visible data values before the R token
        int k = 1;           // 1 + data tokens between the R token and j
        for (int i = 0; i < j; i++) {
            if (tok[i] >= n) continue;
            if (i < p) z.push_back(tok[i]);
            if (i > p) k++;
        }
        const int zs = int(z.size());
        if (zs >= k) d.determined = true, d.value = (z[zs - k] + m) % n;
    }
    return d;
}

// Checks every target of a window; returns the number of counted targets.
// opens_stream: the window starts at the stream's start (its first data tokens are
// initial and have no label).
int check_window(const Task& task, int n, const Window& w, int gap_min, int gap_max,
                 const std::string& where, bool opens_stream = false) {
    const auto names = task.label_names();
    const int T = int(w.counted.size());
    EXPECT_EQ(int(w.tokens.size()), T + 1) << where;
    int counted = 0;
    for (int t = 0; t < T; t++) {
        const int j = t + 1;
        const int32_t v = w.tokens[j];
        EXPECT_TRUE(v >= 0 && v < n + 4) << where;
        const Derived d = derive(w.tokens, n, j);
        EXPECT_EQ(bool(w.counted[t]), d.determined) << where << " target " << t;
        if (d.determined) {
            EXPECT_EQ(v, d.value) << where << " target " << t;
        }
        const std::string label = w.label[t] >= 0 ? names[size_t(w.label[t])] : "-";
        if (v >= n) {
            EXPECT_EQ(label, "-") << where << " control target " << t;
        } else if (d.label) {
            EXPECT_EQ(label, std::string(1, d.label)) << where << " target " << t;
        } else if (!opens_stream) {
            EXPECT_NE(label, "-") << where << " data target " << t;  // its task token is earlier
        }
        counted += w.counted[t];
    }
    // Gaps: consecutive control tokens gap_min..gap_max apart; the runs of data at the
    // window's edges are no longer than a gap allows.
    int last = -1;
    for (int i = 0; i <= T; i++) {
        if (w.tokens[i] < n) continue;
        if (last >= 0) {
            EXPECT_GE(i - last, gap_min) << where << " control at " << i;
            EXPECT_LE(i - last, gap_max) << where << " control at " << i;
        } else {
            EXPECT_LE(i, opens_stream ? 2 : gap_max - 1) << where << " first control";
        }
        last = i;
    }
    if (T + 1 > gap_max) {
        EXPECT_GE(last, 0) << where << " no control token";
    }
    if (last >= 0) {
        EXPECT_LE(T - last, gap_max - 1) << where << " last control";
    }
    return counted;
}

std::vector<int32_t> parse_tokens(const std::string& text, int n) {
    std::vector<int32_t> tokens;
    std::istringstream in(text);
    std::string word;
    while (in >> word) {
        const size_t letter = std::string("IARC").find(word);
        tokens.push_back(letter != std::string::npos && word.size() == 1 ? n + int(letter)
                                                                         : std::stoi(word));
    }
    return tokens;
}

// The worked example of docs/tasks.md, verbatim.
const char* example_tokens =
    " 6  8  I  9 10 11 12 13  C 15  1  3  R  3  1 15 13 12 11 10  A  5 15  4  3  7 10  1 11  C";
const char* example_marks =
    " .  .  .  ^  ^  ^  ^  ^  .  ^  ^  ^  .  ^  ^  ^  ^  ^  ^  ^  .  ^  ^  ^  ^  ^  ^  ^  ^  .";

TEST(IarcModifier, WorkedExampleOfTheSpec) {
    const std::vector<int32_t> tokens = parse_tokens(example_tokens, 16);
    std::vector<char> marks;
    for (char ch : std::string(example_marks))
        if (ch != ' ') marks.push_back(ch);
    ASSERT_EQ(tokens.size(), marks.size());
    const int T = int(tokens.size()) - 1;
    // A window from the start of a stream: the trace throws if a token breaks its rule.
    std::vector<ModifierTrace> trace;
    ASSERT_NO_THROW(trace_modifier_stream(tokens, 16, trace));
    const auto task = make_task(modifier_config());
    const auto& modifier = dynamic_cast<const IarcModifierTask&>(*task);
    Window w{tokens, std::vector<uint8_t>(T), std::vector<int8_t>(T)};
    annotate_modifier_window(trace, 0, T, modifier.label_of_letter(), w.counted.data(),
                             w.label.data());
    for (int t = 0; t < T; t++)
        EXPECT_EQ(bool(w.counted[t]), marks[t + 1] == '^') << "target " << t;
    EXPECT_GT(check_window(*task, 16, w, 3, 9, "example", true), 20);
    // "C makes m = 1: 13 + 2 = 15": positions 9..11 carry m = 1 and the label C;
    // R resets m.
    for (int i = 9; i <= 11; i++) {
        EXPECT_EQ(trace[i].m, 1) << i;
        EXPECT_EQ(w.label[i - 1], 3) << i;
    }
    EXPECT_EQ(trace[13].m, 0);
    EXPECT_EQ(w.label[12], 2);  // the first R token is labelled R
    // R's first token reads Z[-1], the data token just before the R token.
    EXPECT_EQ(trace[13].first_read, 11);
    // A token that breaks the example's rule is refused, naming the rule and m.
    std::vector<int32_t> broken = tokens;
    broken[10] = 0;  // m = 1 gives 15 + 2 = 1
    try {
        trace_modifier_stream(broken, 16, trace);
        ADD_FAILURE() << "no error";
    } catch (const Error& e) {
        EXPECT_NE(std::string(e.what()).find("m = 1"), std::string::npos) << e.what();
    }
    EXPECT_THROW(trace_modifier_stream(parse_tokens("1 2 C 3", 16), 16, trace), Error);
}

// Every rule, counted flag, label and gap of sampled windows against the checker.
TEST(IarcModifier, SampledWindowsObeyEveryRule) {
    struct Case {
        int n;
        std::string tasks;
        double p_c;
        int gap_min, gap_max;
    };
    const Case cases[] = {
        {16, "IARC", 0.25, 3, 9}, {16, "RC", 0.6, 3, 9}, {2, "IARC", 0.25, 3, 9},
        {64, "IA", 0.25, 2, 5},   {7, "AC", 0.9, 1, 4},  {16, "IARC", 0.0, 9, 9},
    };
    for (const Case& c : cases) {
        const auto task = make_task(modifier_config(c.n, c.tasks, c.p_c, c.gap_min, c.gap_max));
        for (int T : {1, 8, 64, 257}) {
            long counted = 0;
            for (uint64_t i = 0; i < 150; i++) {
                const Window w = sample_window(*task, 21, i, T);
                counted += check_window(
                    *task, c.n, w, c.gap_min, c.gap_max,
                    c.tasks + " T=" + std::to_string(T) + " window " + std::to_string(i));
                if (::testing::Test::HasFailure()) return;
            }
            if (T >= 64) {
                EXPECT_GT(counted, 150 * T / 3) << c.tasks;
            }
        }
    }
}

// Long streams from their start: the generator's trace equals the trace re-derived
// from its tokens, and windows anywhere in the stream pass the checker.
TEST(IarcModifier, LongStreamsAgreeWithTheCheckerAndTheTrace) {
    const auto task = make_task(modifier_config());
    const auto& modifier = dynamic_cast<const IarcModifierTask&>(*task);
    for (uint64_t seed = 0; seed < 4; seed++) {
        Rng rng(seed);
        std::vector<int32_t> stream;
        std::vector<ModifierTrace> generated, retraced;
        modifier.generate_stream(rng, 20000, stream, generated);
        trace_modifier_stream(stream, 16, retraced);
        for (size_t i = 0; i < stream.size(); i++) {
            ASSERT_EQ(generated[i].source, retraced[i].source) << i;
            ASSERT_EQ(generated[i].letter, retraced[i].letter) << i;
            ASSERT_EQ(generated[i].m, retraced[i].m) << i;
            ASSERT_EQ(generated[i].first_read, retraced[i].first_read) << i;
        }
        for (int start = 0; start + 401 <= 20000; start += 1999) {
            const int T = 400;
            Window w{std::vector<int32_t>(stream.begin() + start, stream.begin() + start + T + 1),
                     std::vector<uint8_t>(T), std::vector<int8_t>(T)};
            annotate_modifier_window(generated, start, T, modifier.label_of_letter(),
                                     w.counted.data(), w.label.data());
            check_window(*task, 16, w, 3, 9, "start " + std::to_string(start), start == 0);
            if (::testing::Test::HasFailure()) return;
        }
    }
}

// The stream's statistics: C is p_c of the control tokens after the first, tasks are
// uniform, gaps uniform over gap_min..gap_max, and m >= 1 on a fair share of targets.
TEST(IarcModifier, ControlTokensAndGapsFollowTheirLaws) {
    const auto task = make_task(modifier_config());
    const auto& modifier = dynamic_cast<const IarcModifierTask&>(*task);
    Rng rng(7);
    std::vector<int32_t> stream;
    std::vector<ModifierTrace> trace;
    modifier.generate_stream(rng, 300000, stream, trace);
    std::vector<long> letters(4, 0), gaps(10, 0);
    long controls = 0, modified = 0, data = 0;
    int last = -1;
    for (int i = 0; i < int(stream.size()); i++) {
        if (stream[i] < 16) {
            if (trace[i].source == IarcSource::rule) data++, modified += trace[i].m > 0;
            continue;
        }
        if (last < 0) {
            EXPECT_EQ(i, 2);
            EXPECT_NE(stream[i], 19) << "the first control token is a task token";
        } else {
            letters[stream[i] - 16]++;
            controls++;
            ASSERT_TRUE(i - last >= 3 && i - last <= 9) << i;
            gaps[i - last]++;
        }
        last = i;
    }
    // ~50000 control tokens: standard errors below 0.25 points.
    EXPECT_NEAR(double(letters[3]) / controls, 0.25, 0.01);
    for (int r = 0; r < 3; r++) EXPECT_NEAR(double(letters[r]) / controls, 0.25, 0.01) << r;
    for (int g = 3; g <= 9; g++) EXPECT_NEAR(double(gaps[g]) / controls, 1.0 / 7, 0.01) << g;
    // m >= 1 exactly when the latest control token is C (a task token resets m), so
    // a share p_c of the data tokens carry a modifier.
    EXPECT_NEAR(double(modified) / double(data), 0.25, 0.01);
}

TEST(IarcModifier, NamesLabelsAndDisabledTasks) {
    const auto all = make_task(modifier_config());
    EXPECT_EQ(all->name(), "iarc");
    EXPECT_EQ(all->vocab(), 20);
    EXPECT_EQ(all->label_names(), (std::vector<std::string>{"I", "A", "R", "C"}));
    EXPECT_EQ(all->token_text(19), "C");
    // Without C in task.tasks no C token occurs, whatever p_c says.
    const auto no_c = make_task(modifier_config(16, "RA", 0.9));
    EXPECT_EQ(no_c->label_names(), (std::vector<std::string>{"A", "R"}));
    for (uint64_t i = 0; i < 200; i++) {
        const Window w = sample_window(*no_c, 1, i, 64);
        for (int32_t v : w.tokens) ASSERT_TRUE(v < 16 || v == 17 || v == 18) << v;
    }
    // The default variant is the lookup reading, unchanged.
    EXPECT_EQ(TaskConfig{}.variant, "lookup");
    EXPECT_NE(dynamic_cast<const IarcTask*>(make_task(TaskConfig{}).get()), nullptr);
}

std::string error_of(const TaskConfig& cfg) {
    try {
        make_task(cfg);
    } catch (const Error& e) {
        return e.what();
    }
    return "";
}

TEST(IarcModifier, ValidationErrorsNameTheKeyTheValueAndWhatIsValid) {
    TaskConfig c = modifier_config();
    c.variant = "lookups";
    EXPECT_EQ(error_of(c),
              "task.variant = \"lookups\" is unknown: valid variants are lookup, modifier");
    c = modifier_config(16, "C");
    EXPECT_NE(error_of(c).find("at least one of I, A, R"), std::string::npos) << error_of(c);
    c = modifier_config(16, "IAX");
    EXPECT_NE(error_of(c).find("task.tasks = \"IAX\""), std::string::npos) << error_of(c);
    for (double bad : {-0.1, 1.5, std::nan("")}) {
        c = modifier_config(16, "IARC", bad);
        EXPECT_NE(error_of(c).find("task.p_c"), std::string::npos) << bad;
        EXPECT_NE(error_of(c).find("[0, 1]"), std::string::npos) << bad;
    }
    c = modifier_config(16, "IARC", 0.25, 0, 9);
    EXPECT_EQ(error_of(c), "task.gap_min = 0 is out of range: must be 1..1000");
    c = modifier_config(16, "IARC", 0.25, 5, 4);
    EXPECT_EQ(error_of(c),
              "task.gap_max = 4 is out of range: must be task.gap_min..1000 = 5..1000");
    c = modifier_config(1);
    EXPECT_EQ(error_of(c), "task.n = 1 is out of range: must be 2..1000");
    // Options of the other variant are not read, so not checked.
    c = modifier_config();
    c.mu = -1;
    EXPECT_EQ(error_of(c), "");
    TaskConfig lookup;
    lookup.gap_max = 0;
    EXPECT_EQ(error_of(lookup), "");
}

// `task sample` shows the variant: text marks counted targets under their tokens.
TEST(IarcModifier, TaskSampleText) {
    const auto task = make_task(modifier_config());
    std::ostringstream out;
    write_samples(out, *task, 40, 2, 5, SampleFormat::text);
    const std::string text = out.str();
    EXPECT_NE(text.find("# iarc window 0"), std::string::npos);
    EXPECT_NE(text.find('^'), std::string::npos);
    EXPECT_NE(text.find(" C"), std::string::npos);
}

}  // namespace
}  // namespace attnlab
