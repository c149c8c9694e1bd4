// Validation helpers shared by the task generators: every error names the key
// as task.<field>, the bad value and what would be valid (see core/error.h).
#pragma once
#include <string>
#include <string_view>
#include <vector>

namespace attnlab::task_options {

// Throws Error("task.<field> = <value> <problem>"), e.g.
// "task.n = 1 is out of range: must be 2..1000".
[[noreturn]] void fail(std::string_view field, std::string_view value, std::string_view problem);

// Throws unless lo <= value <= hi.
void check_range(std::string_view field, int value, int lo, int hi);

// Throws unless the list has min_size..max_size entries, each in lo..hi, without repeats.
// `what` names one entry in the message ("delay", "level").
void check_int_list(std::string_view field, const std::vector<int>& values, int min_size,
                    int max_size, int lo, int hi, std::string_view what);

// Text of a list as written in a config: [1, 2, 4].
std::string list_text(const std::vector<int>& values);

}  // namespace attnlab::task_options
