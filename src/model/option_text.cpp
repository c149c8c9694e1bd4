// Option values as text (option_text.h).
#include "model/option_text.h"

#include <cctype>
#include <cstdint>
#include <sstream>

#include "core/error.h"

namespace attnlab {

std::string trim(std::string s) {
    while (!s.empty() && std::isspace(uint8_t(s.front()))) s.erase(s.begin());
    while (!s.empty() && std::isspace(uint8_t(s.back()))) s.pop_back();
    if (s.size() >= 2 && (s.front() == '"' || s.front() == '\'') && s.back() == s.front())
        s = s.substr(1, s.size() - 2);
    return s;
}

long parse_int(const std::string& key, const std::string& v, long lo, long hi) {
    const std::string t = trim(v);
    size_t used = 0;
    long x = 0;
    try {
        x = std::stol(t, &used);
    } catch (...) {
        used = 0;
    }
    if (used == 0 || used != t.size())
        throw Error(key + " = '" + v + "' is not an integer (valid: " + std::to_string(lo) + ".." +
                    std::to_string(hi) + ")");
    if (x < lo || x > hi)
        throw Error(key + " = " + t + " is out of range: must be " + std::to_string(lo) + ".." +
                    std::to_string(hi));
    return x;
}

std::string choice(const std::string& key, const std::string& v,
                   const std::vector<std::string>& valid) {
    const std::string t = trim(v);
    for (const auto& c : valid)
        if (t == c) return t;
    std::string list;
    for (const auto& c : valid) list += (list.empty() ? "" : ", ") + c;
    throw Error(key + " = '" + t + "' is not valid; choose one of: " + list);
}

std::vector<std::string> split_list(const std::string& v) {
    std::string t = trim(v);
    if (!t.empty() && t.front() == '[') t = t.substr(1);
    if (!t.empty() && t.back() == ']') t.pop_back();
    std::vector<std::string> out;
    std::stringstream ss(t);
    std::string item;
    while (std::getline(ss, item, ','))
        if (!trim(item).empty()) out.push_back(trim(item));
    return out;
}

std::string quote(const std::string& s) {
    return "\"" + s + "\"";
}

std::string str_list(const std::vector<std::string>& v) {
    std::string s = "[";
    for (size_t i = 0; i < v.size(); i++) s += (i ? ", " : "") + quote(v[i]);
    return s + "]";
}

}  // namespace attnlab
