// Option values as text: the parsing and checking every configuration path
// shares (TOML files, --set, checkpoint JSON), with errors that name the key,
// the value and what is valid.
#pragma once
#include <string>
#include <vector>

namespace attnlab {

// Surrounding whitespace and one pair of matching quotes removed.
std::string trim(std::string s);
// An integer in lo..hi; throws Error naming `key` otherwise.
long parse_int(const std::string& key, const std::string& v, long lo, long hi);
// One of `valid`; throws Error listing the choices otherwise.
std::string choice(const std::string& key, const std::string& v,
                   const std::vector<std::string>& valid);
// The items of "[a, b]", "a, b" or "[\"a\", \"b\"]", each trimmed; empty items dropped.
std::vector<std::string> split_list(const std::string& v);
// TOML (and JSON) literals: "text", ["a", "b"].
std::string quote(const std::string& s);
std::string str_list(const std::vector<std::string>& v);

}  // namespace attnlab
