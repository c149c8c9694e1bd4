// safetensors reading (validated) and writing (atomic).
#include "core/safetensors.h"

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <nlohmann/json.hpp>

#include "core/error.h"

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
        header[e.name] = {{"dtype", e.dtype}, {"shape", e.shape}, {"data_offsets", {e.begin, e.end}}};
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
    std::ifstream in(path, std::ios::binary);
    if (!in) throw Error("cannot open checkpoint '" + path + "': " + std::strerror(errno));
    data_.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    auto bad = [&](const std::string& why) {
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
        header = json::parse(data_.begin() + 8, data_.begin() + 8 + n);
    } catch (const std::exception& e) {
        throw bad(std::string("header is not valid JSON (") + e.what() + ")");
    }
    if (!header.is_object()) throw bad("header is not a JSON object");
    const size_t data_size = data_.size() - data_start_;
    try {
        for (auto it = header.begin(); it != header.end(); ++it) {
            if (it.key() == "__metadata__") {
                for (auto m = it->begin(); m != it->end(); ++m)
                    metadata_[m.key()] = m->get<std::string>();
                continue;
            }
            TensorEntry e;
            e.name = it.key();
            e.dtype = it->at("dtype").get<std::string>();
            e.shape = it->at("shape").get<std::vector<int64_t>>();
            const auto offs = it->at("data_offsets").get<std::vector<size_t>>();
            if (offs.size() != 2) throw bad("tensor '" + e.name + "' has malformed data_offsets");
            e.begin = offs[0], e.end = offs[1];
            const size_t es = dtype_size(e.dtype);
            if (es == 0) throw bad("tensor '" + e.name + "' has unknown dtype " + e.dtype);
            size_t count = 1;
            for (auto d : e.shape) {
                if (d < 0) throw bad("tensor '" + e.name + "' has a negative dimension");
                count *= size_t(d);
            }
            if (e.end < e.begin || e.end - e.begin != count * es)
                throw bad("tensor '" + e.name + "' of shape " + shape_str(e.shape) + " and dtype " +
                          e.dtype + " does not fit its byte range");
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
    std::sort(sorted.begin(), sorted.end(),
              [](auto* a, auto* b) { return a->begin < b->begin; });
    size_t pos = 0;
    for (auto* e : sorted) {
        if (e->begin != pos) throw bad("tensor '" + e->name + "' overlaps or leaves a gap");
        pos = e->end;
    }
    if (pos != data_size)
        throw bad("data section has " + std::to_string(data_size - pos) + " trailing bytes");
}

std::string SafeTensorsFile::metadata_or(const std::string& key, const std::string& fallback) const {
    auto it = metadata_.find(key);
    return it == metadata_.end() ? fallback : it->second;
}

const TensorEntry* SafeTensorsFile::find(const std::string& name) const {
    for (const auto& e : entries_)
        if (e.name == name) return &e;
    return nullptr;
}

const float* SafeTensorsFile::f32(const std::string& name, const std::vector<int64_t>& shape) const {
    const TensorEntry* e = find(name);
    if (!e) throw Error("'" + path_ + "' has no tensor '" + name + "'");
    if (e->dtype != "F32")
        throw Error("'" + path_ + "': tensor '" + name + "' has dtype " + e->dtype + ", expected F32");
    if (e->shape != shape)
        throw Error("'" + path_ + "': tensor '" + name + "' has shape " + shape_str(e->shape) +
                    ", the model expects " + shape_str(shape));
    return reinterpret_cast<const float*>(raw(*e));
}

void write_file_atomic(const std::string& path, const void* data, size_t nbytes) {
    const std::string tmp = path + ".tmp." + std::to_string(::getpid());
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) throw Error("cannot write '" + path + "': " + std::strerror(errno));
    const auto* p = static_cast<const char*>(data);
    size_t left = nbytes;
    while (left > 0) {
        const ssize_t w = ::write(fd, p, left);
        if (w < 0) {
            const int err = errno;
            ::close(fd);
            ::unlink(tmp.c_str());
            throw Error("cannot write '" + path + "': " + std::strerror(err));
        }
        p += w, left -= size_t(w);
    }
    ::fsync(fd);
    ::close(fd);
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
        const int err = errno;
        ::unlink(tmp.c_str());
        throw Error("cannot write '" + path + "': " + std::strerror(err));
    }
}

void write_text_atomic(const std::string& path, const std::string& text) {
    write_file_atomic(path, text.data(), text.size());
}

}  // namespace attnlab
