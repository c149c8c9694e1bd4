// libFuzzer harness: the safetensors reader on arbitrary bytes. The only
// acceptable failure is attnlab::Error; anything else (a crash, a sanitizer
// report, another exception escaping) is a finding.
#include <cstdint>
#include <vector>

#include "core/error.h"
#include "core/safetensors.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    try {
        const attnlab::SafeTensorsFile f("fuzz.safetensors",
                                         std::vector<uint8_t>(data, data + size));
        for (const auto& e : f.tensors())
            if (e.dtype == "F32") f.f32(e.name, e.shape);  // the finiteness scan reads every value
        f.metadata_or("step", "");
    } catch (const attnlab::Error&) {
    }
    return 0;
}
