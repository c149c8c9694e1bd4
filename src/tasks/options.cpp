// Validation helpers shared by the task generators (messages: key, bad value, what is valid).
#include "tasks/options.h"

#include <fmt/format.h>

#include <algorithm>

#include "core/error.h"

namespace attnlab::task_options {

void fail(std::string_view field, std::string_view value, std::string_view problem) {
    throw Error(fmt::format("task.{} = {} {}", field, value, problem));
}

void check_range(std::string_view field, int value, int lo, int hi) {
    if (value < lo || value > hi)
        fail(field, std::to_string(value), fmt::format("is out of range: must be {}..{}", lo, hi));
}

void check_int_list(std::string_view field, const std::vector<int>& values, int min_size,
                    int max_size, int lo, int hi, std::string_view what) {
    const int size = int(values.size());
    if (size < min_size || size > max_size)
        fail(field, list_text(values),
             fmt::format("has {} entries: must have {}..{} {}s", size, min_size, max_size, what));
    for (int i = 0; i < size; i++) {
        if (values[i] < lo || values[i] > hi)
            fail(field, list_text(values),
                 fmt::format("is invalid: {} {} is out of range, each must be {}..{}", what,
                             values[i], lo, hi));
        if (std::find(values.begin(), values.begin() + i, values[i]) != values.begin() + i)
            fail(field, list_text(values),
                 fmt::format("is invalid: {} {} is repeated, each may appear once", what,
                             values[i]));
    }
}

std::string list_text(const std::vector<int>& values) {
    std::string text = "[";
    for (size_t i = 0; i < values.size(); i++) {
        if (i) text += ", ";
        text += std::to_string(values[i]);
    }
    return text + "]";
}

}  // namespace attnlab::task_options
