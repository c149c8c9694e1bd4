// Printing task windows for inspection (`attnlab task sample`): JSON lines for
// tools, or aligned text with counted targets marked like the examples in docs/tasks.md.
#pragma once
#include <cstdint>
#include <iosfwd>
#include <string>

#include "tasks/task.h"

namespace attnlab {

enum class SampleFormat { jsonl, text };

// "jsonl" or "text"; anything else throws Error naming `format` and the valid values.
SampleFormat parse_sample_format(const std::string& text);

// Writes windows 0..windows-1 of sample_window(task, seed, index, T).
//   jsonl: one object per window and line, keys in this order:
//     "tokens"  T + 1 ints,
//     "counted" T bools (targets 1..T),
//     "labels"  T strings, the target's label name or "-" where it has none.
//   text: per window a header line, the tokens (token_text, right-aligned columns),
//     a line with ^ under counted targets and . elsewhere (the first token is input
//     only, always .), a line with each target's label ("-" for none), and a blank line.
// Throws Error if T < 1 or windows < 0.
void write_samples(std::ostream& os, const Task& task, int T, int windows, uint64_t seed,
                   SampleFormat fmt);

}  // namespace attnlab
