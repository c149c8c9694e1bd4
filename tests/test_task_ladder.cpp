// Tests of the ladder and multitask tasks: recurrence, counted targets, task token,
// labels and task mix, checked with the delays written out here, not the generator's.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "tasks/ladder.h"
#include "tasks/task.h"

namespace attnlab {
namespace {

// Checks a sequence x (window positions first..first+len-1 hold x_0, x_1, ...) against
// x_t = sum_i x_{t - tau_i} mod n: every t >= tau_max must obey it.
void expect_recurrence(const std::vector<int32_t>& tokens, int first, int n,
                       const std::vector<int>& delays, const std::string& where) {
    int tau_max = 0;
    for (int d : delays) tau_max = std::max(tau_max, d);
    for (int t = tau_max; first + t < int(tokens.size()); t++) {
        long sum = 0;
        for (int d : delays) sum += tokens[first + t - d];
        ASSERT_EQ(tokens[first + t], sum % n) << where << " x_" << t;
    }
}

TEST(LadderTask, CountedTargetsObeyTheRecurrenceAndTheHeadIsNotCounted) {
    struct Case {
        int n;
        int k;
        std::vector<int> delays;  // explicit, or empty for 1, 2, ..., 2^(k-1)
    };
    const std::vector<Case> cases = {
        {16, 1, {}}, {16, 2, {}}, {16, 4, {}},     {16, 8, {}},
        {2, 3, {}},  {97, 5, {}}, {16, 0, {1, 3}}, {10, 0, {7, 2, 5}},
    };
    for (const Case& c : cases) {
        TaskConfig cfg;
        cfg.name = "ladder";
        cfg.n = c.n;
        if (c.delays.empty())
            cfg.k = c.k;
        else
            cfg.delays = c.delays;
        const auto task = make_task(cfg);
        std::vector<int> delays = c.delays;
        if (delays.empty())
            for (int i = 0, d = 1; i < c.k; i++, d *= 2) delays.push_back(d);
        int tau_max = 0;
        for (int d : delays) tau_max = std::max(tau_max, d);
        ASSERT_EQ(task->vocab(), c.n);
        ASSERT_EQ(task->label_names().size(), 1u);
        for (int T : {1, 9, 64, 200}) {
            for (uint64_t i = 0; i < 100; i++) {
                const Window w = sample_window(*task, 8, i, T);
                const std::string where = task->label_names()[0] + " T=" + std::to_string(T);
                ASSERT_EQ(int(w.tokens.size()), T + 1);
                for (int32_t v : w.tokens) ASSERT_TRUE(v >= 0 && v < c.n) << where;
                // Window position j holds x_j; target t is x_{t+1}.
                for (int t = 0; t < T; t++) {
                    EXPECT_EQ(bool(w.counted[t]), t + 1 >= tau_max) << where << " t " << t;
                    EXPECT_EQ(w.label[t], 0) << where;
                }
                expect_recurrence(w.tokens, 0, c.n, delays, where);
            }
        }
    }
}

// The head x_0..x_{tau_max-1} is uniform random: every value shows up, none dominates.
TEST(LadderTask, HeadIsUniform) {
    TaskConfig cfg;
    cfg.name = "ladder";
    cfg.k = 3;
    const auto task = make_task(cfg);
    std::vector<long> histogram(16, 0);
    const int windows = 4000;
    for (uint64_t i = 0; i < windows; i++) {
        const Window w = sample_window(*task, 1, i, 16);
        for (int j = 0; j < 4; j++) histogram[w.tokens[j]]++;
    }
    for (long h : histogram) EXPECT_NEAR(double(h) / (4.0 * windows), 1.0 / 16, 0.01);
}

TEST(LadderTask, LabelsNamesAndLongDelays) {
    TaskConfig cfg;
    cfg.name = "ladder";
    cfg.k = 5;
    EXPECT_EQ(make_task(cfg)->label_names(), std::vector<std::string>{"K5"});
    cfg.delays = {1, 3};
    EXPECT_EQ(make_task(cfg)->label_names(), std::vector<std::string>{"d1,3"});
    // tau_max beyond the window: nothing is determined, nothing counted.
    cfg.delays = {100};
    const Window w = sample_window(*make_task(cfg), 1, 0, 50);
    for (uint8_t c : w.counted) EXPECT_EQ(c, 0);
    EXPECT_EQ(ladder_delays(4), (std::vector<int>{1, 2, 4, 8}));
}

TEST(MultitaskTask, TaskTokenFirstLabelsCountedAndRecurrence) {
    TaskConfig cfg;
    cfg.name = "multitask";
    cfg.n = 16;
    cfg.levels = {2, 3, 4};
    const auto task = make_task(cfg);
    EXPECT_EQ(task->vocab(), 19);
    EXPECT_EQ(task->label_names(), (std::vector<std::string>{"K2", "K3", "K4"}));
    EXPECT_EQ(task->token_text(17), "<K3>");
    EXPECT_EQ(task->token_text(5), "5");
    const std::vector<std::vector<int>> delays = {{1, 2}, {1, 2, 4}, {1, 2, 4, 8}};
    std::vector<long> per_task(3, 0);
    const int windows = 3000;
    for (int T : {1, 6, 64}) {
        for (uint64_t i = 0; i < windows; i++) {
            const Window w = sample_window(*task, 21, i, T);
            const int m = w.tokens[0] - 16;
            ASSERT_TRUE(m >= 0 && m < 3) << "task token " << w.tokens[0];
            if (T == 64) per_task[m]++;
            const int tau_max = delays[m].back();
            for (int j = 1; j <= T; j++) ASSERT_LT(w.tokens[j], 16);
            // Window position t + 1 holds x_t, which is target t.
            for (int t = 0; t < T; t++) {
                EXPECT_EQ(bool(w.counted[t]), t >= tau_max) << "K" << cfg.levels[m] << " t " << t;
                EXPECT_EQ(w.label[t], m);
            }
            expect_recurrence(w.tokens, 1, 16, delays[m], "multitask");
        }
    }
    // 3000 windows: the standard error of a share is ~0.9 points.
    for (long count : per_task) EXPECT_NEAR(double(count) / windows, 1.0 / 3, 0.03);
}

TEST(MultitaskTask, LevelOrderFollowsTheConfig) {
    TaskConfig cfg;
    cfg.name = "multitask";
    cfg.n = 7;
    cfg.levels = {5, 1};
    const auto task = make_task(cfg);
    EXPECT_EQ(task->label_names(), (std::vector<std::string>{"K5", "K1"}));
    bool seen[2] = {false, false};
    for (uint64_t i = 0; i < 100; i++) {
        const Window w = sample_window(*task, 2, i, 40);
        const int m = w.tokens[0] - 7;
        seen[m] = true;
        expect_recurrence(w.tokens, 1, 7,
                          m == 0 ? std::vector<int>{1, 2, 4, 8, 16} : std::vector<int>{1},
                          "multitask K" + std::to_string(cfg.levels[m]));
        EXPECT_EQ(w.counted[15], m == 1 ? 1 : 0);  // t = 15: counted for K1, not for K5 (tau 16)
        EXPECT_EQ(w.counted[16], 1);
    }
    EXPECT_TRUE(seen[0] && seen[1]);
}

}  // namespace
}  // namespace attnlab
