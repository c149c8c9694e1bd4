// safetensors files: 8-byte little-endian header length, JSON header with
// dtype/shape/offsets per tensor and a string map `__metadata__`, raw data.
// Writes are atomic (temporary file, then rename); reads validate everything.
#pragma once
#include <cstdint>
#include <functional>
#include <map>
#include <nlohmann/json_fwd.hpp>
#include <string>
#include <vector>

#include "core/atomic_file.h"  // write_file_atomic, write_text_atomic
#include "core/error.h"

namespace attnlab {

struct TensorEntry {
    std::string name;
    std::string dtype;  // F32, I32, U8, F64, I64
    std::vector<int64_t> shape;
    size_t begin = 0, end = 0;  // byte offsets into the data section
};

class SafeTensorsWriter {
  public:
    void add(const std::string& name, const std::string& dtype, std::vector<int64_t> shape,
             const void* data, size_t nbytes);
    void add_f32(const std::string& name, std::vector<int64_t> shape, const float* data);
    void set_metadata(const std::string& key, const std::string& value) { metadata_[key] = value; }
    // Writes to `path` atomically; throws Error naming the path on failure.
    void write(const std::string& path) const;

  private:
    std::vector<TensorEntry> entries_;
    std::vector<uint8_t> data_;
    std::map<std::string, std::string> metadata_;
};

class SafeTensorsFile {
  public:
    // Reads and validates the whole file; throws Error naming the file and the defect.
    explicit SafeTensorsFile(const std::string& path);
    // Parses bytes already in memory; `name` stands for the file in errors.
    SafeTensorsFile(const std::string& name, std::vector<uint8_t> bytes);
    static constexpr size_t kMaxFileBytes = size_t(1) << 40;
    const std::map<std::string, std::string>& metadata() const { return metadata_; }
    std::string metadata_or(const std::string& key, const std::string& fallback) const;
    const std::vector<TensorEntry>& tensors() const { return entries_; }
    const TensorEntry* find(const std::string& name) const;
    // Tensor data; checks dtype, shape and that every value is finite, naming the tensor.
    const float* f32(const std::string& name, const std::vector<int64_t>& shape) const;
    const void* raw(const TensorEntry& e) const { return data_.data() + data_start_ + e.begin; }
    const std::string& path() const { return path_; }

  private:
    void parse();
    static TensorEntry parse_entry(const std::string& name, const nlohmann::json& v,
                                   const std::function<Error(const std::string&)>& bad);
    std::string path_;
    std::vector<uint8_t> data_;
    size_t data_start_ = 0;
    std::vector<TensorEntry> entries_;
    std::map<std::string, std::string> metadata_;
};

std::string shape_str(const std::vector<int64_t>& shape);

}  // namespace attnlab
