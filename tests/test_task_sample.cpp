// Tests of `task sample` output: JSON lines and aligned text agree with sample_window.
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>
#include <sstream>
#include <string>
#include <vector>

#include "core/error.h"
#include "tasks/sample.h"
#include "tasks/task.h"

namespace attnlab {
namespace {

std::vector<std::string> lines_of(const std::string& text) {
    std::vector<std::string> lines;
    std::istringstream in(text);
    std::string line;
    while (std::getline(in, line)) lines.push_back(line);
    return lines;
}

std::vector<std::string> words_of(const std::string& line) {
    std::vector<std::string> words;
    std::istringstream in(line);
    std::string word;
    while (in >> word) words.push_back(word);
    return words;
}

TEST(TaskSample, JsonlMatchesSampleWindow) {
    TaskConfig cfg;
    const auto task = make_task(cfg);
    std::ostringstream out;
    write_samples(out, *task, 32, 5, 77, SampleFormat::jsonl);
    const auto lines = lines_of(out.str());
    ASSERT_EQ(lines.size(), 5u);
    const auto names = task->label_names();
    for (int i = 0; i < 5; i++) {
        const auto j = nlohmann::json::parse(lines[i]);
        const Window w = sample_window(*task, 77, i, 32);
        EXPECT_EQ(lines[i].rfind("{\"tokens\":", 0), 0u) << "key order tokens, counted, labels";
        EXPECT_EQ(j.size(), 3u);
        EXPECT_EQ(j["tokens"].get<std::vector<int32_t>>(), w.tokens);
        const auto counted = j["counted"].get<std::vector<bool>>();
        const auto labels = j["labels"].get<std::vector<std::string>>();
        ASSERT_EQ(counted.size(), 32u);
        ASSERT_EQ(labels.size(), 32u);
        for (int t = 0; t < 32; t++) {
            EXPECT_EQ(counted[t], bool(w.counted[t]));
            EXPECT_EQ(labels[t], w.label[t] >= 0 ? names[w.label[t]] : "-");
        }
    }
}

TEST(TaskSample, TextMarksCountedTargetsUnderTheirTokens) {
    for (const char* name : {"iarc", "multitask"}) {
        TaskConfig cfg;
        cfg.name = name;
        const auto task = make_task(cfg);
        std::ostringstream out;
        const int T = 40;
        write_samples(out, *task, T, 3, 5, SampleFormat::text);
        const auto lines = lines_of(out.str());
        ASSERT_EQ(lines.size(), 3u * 5u) << "header, tokens, marks, labels, blank per window";
        for (int i = 0; i < 3; i++) {
            const Window w = sample_window(*task, 5, i, T);
            const std::string& tokens = lines[5 * i + 1];
            const std::string& marks = lines[5 * i + 2];
            const std::string& labels = lines[5 * i + 3];
            EXPECT_EQ(lines[5 * i][0], '#');
            EXPECT_TRUE(lines[5 * i + 4].empty());
            // Same width everywhere: each mark sits under the last character of its token.
            ASSERT_EQ(tokens.size(), marks.size());
            ASSERT_EQ(tokens.size(), labels.size());
            const auto token_words = words_of(tokens);
            const auto mark_words = words_of(marks);
            ASSERT_EQ(token_words.size(), size_t(T + 1));
            ASSERT_EQ(mark_words.size(), size_t(T + 1));
            EXPECT_EQ(mark_words[0], ".");
            for (int j = 0; j <= T; j++) EXPECT_EQ(token_words[j], task->token_text(w.tokens[j]));
            for (int t = 0; t < T; t++)
                EXPECT_EQ(mark_words[t + 1], w.counted[t] ? "^" : ".") << name << " t " << t;
            size_t column = 0;
            for (int j = 0; j <= T; j++) {
                column = tokens.find_first_not_of(' ', column);
                column = tokens.find(' ', column);
                const size_t end = (column == std::string::npos ? tokens.size() : column) - 1;
                EXPECT_EQ(marks[end], j > 0 && w.counted[j - 1] ? '^' : '.') << name << " " << j;
            }
        }
    }
}

TEST(TaskSample, FormatsAndBadArguments) {
    EXPECT_EQ(parse_sample_format("jsonl"), SampleFormat::jsonl);
    EXPECT_EQ(parse_sample_format("text"), SampleFormat::text);
    try {
        parse_sample_format("csv");
        FAIL() << "no error";
    } catch (const Error& e) {
        const std::string message = e.what();
        EXPECT_NE(message.find("format"), std::string::npos);
        EXPECT_NE(message.find("csv"), std::string::npos);
        EXPECT_NE(message.find("jsonl, text"), std::string::npos);
    }
    const auto task = make_task(TaskConfig{});
    std::ostringstream out;
    EXPECT_THROW(write_samples(out, *task, 0, 1, 1, SampleFormat::jsonl), Error);
    EXPECT_THROW(write_samples(out, *task, 8, -1, 1, SampleFormat::jsonl), Error);
    write_samples(out, *task, 8, 0, 1, SampleFormat::text);
    EXPECT_TRUE(out.str().empty());
}

}  // namespace
}  // namespace attnlab
