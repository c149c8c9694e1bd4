// Printing task windows as JSON lines or as aligned text with counted targets marked.
#include "tasks/sample.h"

#include <fmt/format.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <ostream>

#include "core/error.h"

namespace attnlab {

SampleFormat parse_sample_format(const std::string& text) {
    if (text == "jsonl") return SampleFormat::jsonl;
    if (text == "text") return SampleFormat::text;
    throw Error(fmt::format("format = \"{}\" is unknown: valid formats are jsonl, text", text));
}

namespace {

void write_jsonl(std::ostream& os, const Window& w, const std::vector<std::string>& names) {
    // ordered_json keeps the documented key order tokens, counted, labels.
    nlohmann::ordered_json j;
    j["tokens"] = w.tokens;
    std::vector<bool> counted(w.counted.begin(), w.counted.end());
    j["counted"] = counted;
    std::vector<std::string> labels;
    labels.reserve(w.label.size());
    for (int8_t l : w.label) labels.push_back(l >= 0 ? names[l] : "-");
    j["labels"] = labels;
    os << j.dump() << '\n';
}

void write_text(std::ostream& os, const Task& task, const Window& w,
                const std::vector<std::string>& names) {
    const size_t len = w.tokens.size();
    // Column i shows token i; its mark and label are those of target i - 1 (token 0 is
    // input only). One width for all columns keeps the three lines aligned.
    std::vector<std::string> tokens(len), labels(len, "-");
    std::vector<char> marks(len, '.');
    size_t width = 1;
    for (size_t i = 0; i < len; i++) {
        tokens[i] = task.token_text(w.tokens[i]);
        if (i > 0) {
            if (w.counted[i - 1]) marks[i] = '^';
            if (w.label[i - 1] >= 0) labels[i] = names[size_t(w.label[i - 1])];
        }
        width = std::max({width, tokens[i].size(), labels[i].size()});
    }
    std::string line_tokens, line_marks, line_labels;
    for (size_t i = 0; i < len; i++) {
        const char* sep = i ? " " : "";
        line_tokens += fmt::format("{}{:>{}}", sep, tokens[i], width);
        line_marks += fmt::format("{}{:>{}}", sep, marks[i], width);
        line_labels += fmt::format("{}{:>{}}", sep, labels[i], width);
    }
    os << line_tokens << '\n' << line_marks << '\n' << line_labels << '\n';
}

}  // namespace

void write_samples(std::ostream& os, const Task& task, int T, int windows, uint64_t seed,
                   SampleFormat fmt) {
    if (windows < 0)
        throw Error(fmt::format("windows = {} is out of range: must be >= 0", windows));
    const std::vector<std::string> names = task.label_names();
    for (int i = 0; i < windows; i++) {
        const Window w = sample_window(task, seed, uint64_t(i), T);
        if (fmt == SampleFormat::jsonl) {
            write_jsonl(os, w, names);
        } else {
            os << fmt::format("# {} window {} (seed {}, T = {}): ^ counted target\n", task.name(),
                              i, seed, T);
            write_text(os, task, w, names);
            os << '\n';
        }
    }
}

}  // namespace attnlab
