// safetensors reading (validated) and writing (atomic).
#include "core/safetensors.h"

#include <fmt/core.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <functional>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/read_file.h"

namespace attnlab {

using json = nlohmann::json;

static size_t dtype_size(const std::string& dtype) {
    if (dtype == "F32" || dtype == "I32") return 4;
    if (dtype == "F64" || dtype == "I64") return 8;
    if (dtype == "U8" || dtype == "I8" || dtype == "BOOL") return 1;
    if (dtype == "F16" || dtype == "BF16" || dtype == "I16") return 2;
    return 0;
}

std::string shape_str(const std::vector<int64_t>& shape) {
    std::string s = "[";
    for (size_t i = 0; i < shape.size(); i++) s += (i ? ", " : "") + std::to_string(shape[i]);
    return s + "]";
}

void SafeTensorsWriter::add(const std::string& name, const std::string& dtype,
                            std::vector<int64_t> shape, const void* data, size_t nbytes) {
    TensorEntry e;
    e.name = name;
    e.dtype = dtype;
    e.shape = std::move(shape);
    e.begin = data_.size();
    e.end = e.begin + nbytes;
    const auto* p = static_cast<const uint8_t*>(data);
    data_.insert(data_.end(), p, p + nbytes);
    entries_.push_back(std::move(e));
}

void SafeTensorsWriter::add_f32(const std::string& name, std::vector<int64_t> shape,
                                const float* data) {
    size_t n = 1;
    for (auto d : shape) n *= size_t(d);
    add(name, "F32", std::move(shape), data, n * sizeof(float));
}

void SafeTensorsWriter::write(const std::string& path) const {
    // nlohmann's ordered_json keeps the arena order of tensors in the header.
    nlohmann::ordered_json header;
    if (!metadata_.empty()) header["__metadata__"] = metadata_;
    for (const auto& e : entries_)
        header[e.name] = {
            {"dtype", e.dtype}, {"shape", e.shape}, {"data_offsets", {e.begin, e.end}}};
    std::string text = header.dump();
    while ((text.size() + 8) % 8 != 0) text += ' ';
    std::vector<uint8_t> out(8 + text.size() + data_.size());
    uint64_t n = text.size();
    for (int i = 0; i < 8; i++) out[i] = uint8_t(n >> (8 * i));
    std::memcpy(out.data() + 8, text.data(), text.size());
    if (!data_.empty()) std::memcpy(out.data() + 8 + text.size(), data_.data(), data_.size());
    write_file_atomic(path, out.data(), out.size());
}

SafeTensorsFile::SafeTensorsFile(const std::string& path) : path_(path) {
    const std::string bytes = read_regular_file(path, "checkpoint '" + path + "'", kMaxFileBytes);
    data_.assign(bytes.begin(), bytes.end());
    parse();
}

SafeTensorsFile::SafeTensorsFile(const std::string& name, std::vector<uint8_t> bytes)
    : path_(name), data_(std::move(bytes)) {
    parse();
}

namespace {

// A JSON number that is a non-negative integer (1.0 and 1.5 are not), as size_t.
size_t json_index(const json& j, const std::function<Error(const std::string&)>& bad,
                  const std::string& what) {
    if (!j.is_number_unsigned() && !(j.is_number_integer() && j.get<int64_t>() >= 0))
        throw bad(what + " is " + j.dump() + ", not a non-negative integer");
    return j.get<size_t>();
}

}  // namespace

TensorEntry SafeTensorsFile::parse_entry(const std::string& name, const json& v,
                                         const std::function<Error(const std::string&)>& bad) {
    TensorEntry e;
    e.name = name;
    const std::string where = "tensor '" + name + "'";
    if (!v.is_object()) throw bad(where + " is not a JSON object");
    e.dtype = v.at("dtype").get<std::string>();
    const size_t es = dtype_size(e.dtype);
    if (es == 0) throw bad(where + " has unknown dtype " + e.dtype);
    const json& shape = v.at("shape");
    if (!shape.is_array()) throw bad(where + " has a shape that is not a list");
    // The element count, checked against overflow (a forged shape must not wrap around).
    size_t count = 1;
    for (const auto& d : shape) {
        const size_t n = json_index(d, bad, where + " dimension");
        e.shape.push_back(int64_t(n));
        if (n != 0 && count > (size_t(1) << 62) / n) throw bad(where + " has an absurd shape");
        count *= n;
    }
    const json& offs = v.at("data_offsets");
    if (!offs.is_array() || offs.size() != 2) throw bad(where + " has malformed data_offsets");
    e.begin = json_index(offs[0], bad, where + " data_offsets[0]");
    e.end = json_index(offs[1], bad, where + " data_offsets[1]");
    if (count > (size_t(1) << 62) / es || e.end < e.begin || e.end - e.begin != count * es)
        throw bad(where + " of shape " + shape_str(e.shape) + " and dtype " + e.dtype +
                  " does not fit its byte range");
    return e;
}

void SafeTensorsFile::parse() {
    const std::string& path = path_;
    std::function<Error(const std::string&)> bad = [&](const std::string& why) {
        return Error("'" + path + "' is not a valid safetensors file: " + why);
    };
    if (data_.size() < 8) throw bad("shorter than the 8-byte header length");
    uint64_t n = 0;
    for (int i = 0; i < 8; i++) n |= uint64_t(data_[i]) << (8 * i);
    if (n > data_.size() - 8)
        throw bad("header length " + std::to_string(n) + " exceeds the file size " +
                  std::to_string(data_.size()) + " (truncated?)");
    data_start_ = 8 + n;
    json header;
    try {
        header = json::parse(data_.begin() + 8, data_.begin() + 8 + long(n));
    } catch (const std::exception& e) {
        throw bad(std::string("header is not valid JSON (") + e.what() + ")");
    }
    if (!header.is_object()) throw bad("header is not a JSON object");
    const size_t data_size = data_.size() - data_start_;
    try {
        for (auto it = header.begin(); it != header.end(); ++it) {
            if (it.key() == "__metadata__") {
                if (!it->is_object()) throw bad("__metadata__ is not a JSON object");
                for (auto m = it->begin(); m != it->end(); ++m)
                    metadata_[m.key()] = m->get<std::string>();
                continue;
            }
            TensorEntry e = parse_entry(it.key(), *it, bad);
            if (e.end > data_size)
                throw bad("tensor '" + e.name + "' ends at byte " + std::to_string(e.end) +
                          " but the data section has " + std::to_string(data_size) +
                          " bytes (truncated?)");
            entries_.push_back(std::move(e));
        }
    } catch (const json::exception& e) {
        throw bad(std::string("malformed header entry (") + e.what() + ")");
    }
    // Tensors must tile the data section exactly: no overlaps, no gaps.
    std::vector<const TensorEntry*> sorted;
    for (const auto& e : entries_) sorted.push_back(&e);
    std::sort(sorted.begin(), sorted.end(), [](auto* a, auto* b) { return a->begin < b->begin; });
    size_t pos = 0;
    for (auto* e : sorted) {
        if (e->begin != pos) throw bad("tensor '" + e->name + "' overlaps or leaves a gap");
        pos = e->end;
    }
    if (pos != data_size)
        throw bad("data section has " + std::to_string(data_size - pos) + " trailing bytes");
    // Other writers need not pad the header to a multiple of 8 bytes: move the data
    // section to an aligned place, so that f32() returns properly aligned floats.
    if (const size_t off = data_start_ % 8; off != 0) {
        data_.insert(data_.begin() + long(data_start_), 8 - off, uint8_t(0));
        data_start_ += 8 - off;
    }
}

std::string SafeTensorsFile::metadata_or(const std::string& key,
                                         const std::string& fallback) const {
    auto it = metadata_.find(key);
    return it == metadata_.end() ? fallback : it->second;
}

const TensorEntry* SafeTensorsFile::find(const std::string& name) const {
    for (const auto& e : entries_)
        if (e.name == name) return &e;
    return nullptr;
}

const float* SafeTensorsFile::f32(const std::string& name,
                                  const std::vector<int64_t>& shape) const {
    const TensorEntry* e = find(name);
    if (!e) throw Error("'" + path_ + "' has no tensor '" + name + "'");
    if (e->dtype != "F32")
        throw Error("'" + path_ + "': tensor '" + name + "' has dtype " + e->dtype +
                    ", expected F32");
    if (e->shape != shape)
        throw Error("'" + path_ + "': tensor '" + name + "' has shape " + shape_str(e->shape) +
                    ", the model expects " + shape_str(shape));
    if (e->begin % sizeof(float) != 0)
        throw Error(
            fmt::format("'{}': tensor '{}' starts at byte {} of the data section, not at a "
                        "multiple of 4 as F32 data must",
                        path_, name, e->begin));
    const float* p = reinterpret_cast<const float*>(raw(*e));
    const size_t n = (e->end - e->begin) / sizeof(float);
    for (size_t i = 0; i < n; i++)
        if (!std::isfinite(p[i]))
            throw Error(
                fmt::format("'{}': tensor '{}' holds a non-finite value ({}) at element {}; "
                            "the checkpoint is corrupt or the run diverged before it was saved",
                            path_, name, p[i], i));
    return p;
}

}  // namespace attnlab
