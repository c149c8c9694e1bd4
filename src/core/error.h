// Errors raised at the edges (config, CLI, files): one exception type whose
// message names the key or file, the bad value and what would be valid.
#pragma once
#include <stdexcept>
#include <string>

namespace attnlab {

struct Error : std::runtime_error {
    using std::runtime_error::runtime_error;
};

}  // namespace attnlab
