// Reading whole input files safely: the path must name a regular file (checked
// before open, and opened non-blocking, so a FIFO or /dev/zero cannot hang the
// program), no larger than a cap given by the caller.
#pragma once
#include <cstddef>
#include <string>

namespace attnlab {

// The bytes of the regular file at `path`. `what` names it in errors, e.g.
// "config file 'x.toml'". Throws Error when it is missing, a folder, not a
// regular file, unreadable, or larger than max_bytes.
std::string read_regular_file(const std::string& path, const std::string& what, size_t max_bytes);

// Checks, without reading, that `path` names a readable regular file (same errors).
void check_regular_file(const std::string& path, const std::string& what);

}  // namespace attnlab
