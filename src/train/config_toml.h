// The TOML side of the configuration for code that walks toml++ nodes itself
// (the grid reader): the type check apply_toml applies to every value.
#pragma once
#include <toml++/toml.h>

#include <optional>
#include <string>

namespace attnlab {

// Throws Error unless a TOML value has the type `key` takes: the type of the literal
// to_toml writes for it (numbers unquoted); float keys also take integers, list keys
// also take a string. Unknown keys pass (apply_setting reports them).
void check_toml_type(const std::string& key, const toml::node& value);

// The current name of a renamed key (model.cis_maps -> model.cis_linears), silently;
// nullopt for any other key. apply_setting reads the old name with a warning.
std::optional<std::string> renamed_key(const std::string& key);

}  // namespace attnlab
