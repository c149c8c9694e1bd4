// Checked reads of numbers from run files (metrics.csv, safetensors metadata):
// the whole text must be the number, or an Error names what was read.
#pragma once
#include <string>

namespace attnlab {

// A whole decimal integer >= 0. `what` names the field in the error, e.g.
// "'run/model.safetensors': the metadata step".
long parse_count(const std::string& text, const std::string& what);

// A whole finite decimal number.
double parse_number(const std::string& text, const std::string& what);

}  // namespace attnlab
