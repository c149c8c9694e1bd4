// A read-only memory map of a whole file: pages are read on first touch, so a
// corpus of gigabytes costs address space, not memory.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace attnlab {

class MappedFile {
  public:
    // Maps `path`. Throws Error naming `what` (e.g. "task.path = \"x.txt\"") and the
    // problem: missing, a folder, unreadable, or empty. The map is advised for random
    // access (windows are drawn at random offsets).
    MappedFile(const std::string& path, const std::string& what);
    ~MappedFile();
    MappedFile(const MappedFile&) = delete;
    MappedFile& operator=(const MappedFile&) = delete;

    const uint8_t* data() const { return data_; }
    size_t size() const { return size_; }
    const std::string& path() const { return path_; }

  private:
    std::string path_;
    const uint8_t* data_ = nullptr;
    size_t size_ = 0;
};

}  // namespace attnlab
