#include "core/parse_number.h"

#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdlib>

#include "core/error.h"

namespace attnlab {

long parse_count(const std::string& text, const std::string& what) {
    errno = 0;
    char* end = nullptr;
    const long x =
        text.empty() || text[0] == '-' || text[0] == '+' || std::isspace(uint8_t(text[0]))
            ? -1
            : std::strtol(text.c_str(), &end, 10);
    if (x < 0 || errno != 0 || end != text.c_str() + text.size())
        throw Error(what + " is '" + text.substr(0, 40) + "', not a non-negative integer");
    return x;
}

double parse_number(const std::string& text, const std::string& what) {
    char* end = nullptr;
    const double x = text.empty() || std::isspace(uint8_t(text[0]))
                         ? std::nan("")
                         : std::strtod(text.c_str(), &end);
    // strtod sets ERANGE on overflow (then x is infinite) and on underflow (then x is a
    // finite number near 0, which is what the text says), so isfinite decides.
    if (!std::isfinite(x) || end != text.c_str() + text.size())
        throw Error(what + " is '" + text.substr(0, 40) + "', not a finite number");
    return x;
}

}  // namespace attnlab
