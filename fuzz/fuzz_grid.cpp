// libFuzzer harness: the grid reader (a sweep's TOML file expanded into
// resolved runs). Only attnlab::Error may come out.
#include <cstdint>
#include <string>

#include "core/error.h"
#include "sweep/sweep.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string text(reinterpret_cast<const char*>(data), size);
    try {
        const attnlab::SweepPlan plan = attnlab::plan_sweep(text, "'fuzz.toml'", 1);
        attnlab::sweep_json(plan);
    } catch (const attnlab::Error&) {
    }
    return 0;
}
