// The TOML side of the configuration: documents read into a RunConfig, every
// value type-checked against the key it sets.
#include "train/config_toml.h"

#include <map>
#include <sstream>

#include "core/error.h"
#include "core/read_file.h"
#include "train/config.h"

namespace attnlab {

static std::string node_text(const toml::node& n) {
    if (auto s = n.as_string()) return s->get();
    if (auto i = n.as_integer()) return std::to_string(i->get());
    if (auto f = n.as_floating_point()) {
        std::ostringstream os;
        os.precision(17);
        os << f->get();
        return os.str();
    }
    if (auto b = n.as_boolean()) return b->get() ? "true" : "false";
    if (auto a = n.as_array()) {
        std::string s = "[";
        for (size_t i = 0; i < a->size(); i++) s += (i ? "," : "") + node_text(*a->get(i));
        return s + "]";
    }
    return "?";
}

void check_toml_type(const std::string& key, const toml::node& value) {
    // `layers = "2"` is refused like `arch = 2`: a string is not a number.
    static const std::map<std::string, toml::node_type> expected = [] {
        std::map<std::string, toml::node_type> m;
        for (const auto& k : config_keys())
            m[k.name] = toml::parse("x = " + k.get(RunConfig{}))["x"].node()->type();
        return m;
    }();
    const auto it = expected.find(renamed_key(key).value_or(key));
    if (it == expected.end()) return;  // unknown keys are reported by apply_setting
    const toml::node_type want = it->second, got = value.type();
    const bool ok = got == want ||
                    (want == toml::node_type::floating_point && got == toml::node_type::integer) ||
                    (want == toml::node_type::array && got == toml::node_type::string);
    if (ok) return;
    auto name = [](toml::node_type t) {
        switch (t) {
            case toml::node_type::string:
                return "a string";
            case toml::node_type::integer:
                return "an integer";
            case toml::node_type::floating_point:
                return "a number";
            case toml::node_type::boolean:
                return "true or false";
            case toml::node_type::array:
                return "a list";
            case toml::node_type::table:
                return "a table";
            default:
                return "a date or time";
        }
    };
    throw Error(key + " must be " + name(want) + " (without quotes for numbers), not " + name(got));
}

void apply_toml(RunConfig& cfg, const std::string& text, const std::string& origin) {
    toml::table doc;
    try {
        doc = toml::parse(text, origin);
    } catch (const toml::parse_error& e) {
        std::ostringstream os;
        os << e;
        throw Error("cannot parse " + origin + ": " + os.str());
    }
    for (auto& [section, node] : doc) {
        const std::string sec(section.str());
        if (sec != "model" && sec != "task" && sec != "train" && sec != "diffusion")
            throw Error(origin + ": unknown section [" + sec +
                        "]; valid sections: model, task, train, diffusion");
        auto* table = node.as_table();
        if (!table) throw Error(origin + ": '" + sec + "' must be a section [" + sec + "]");
        for (auto& [key, value] : *table) {
            const std::string name = sec + "." + std::string(key.str());
            try {
                check_toml_type(name, value);
                apply_setting(cfg, name, node_text(value));
            } catch (const Error& e) {
                throw Error(origin + ": " + e.what());
            }
        }
    }
}

void apply_toml_file(RunConfig& cfg, const std::string& path) {
    const std::string text = read_regular_file(path, "config file '" + path + "'", kMaxConfigBytes);
    apply_toml(cfg, text, "'" + path + "'");
}

}  // namespace attnlab
