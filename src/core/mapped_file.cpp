// Read-only memory maps (POSIX mmap) with errors that name the file and the problem.
#include "core/mapped_file.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/error.h"

namespace attnlab {

MappedFile::MappedFile(const std::string& path, const std::string& what) : path_(path) {
    // Non-blocking: opening a FIFO would otherwise wait for a writer (fstat refuses it below).
    const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        const int err = errno;
        throw Error(what + ": cannot open the file: " + std::strerror(err));
    }
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        const int err = errno;
        ::close(fd);
        throw Error(what + ": cannot read the file's size: " + std::strerror(err));
    }
    if (S_ISDIR(st.st_mode)) {
        ::close(fd);
        throw Error(what + " is a folder, not a file");
    }
    if (!S_ISREG(st.st_mode)) {
        ::close(fd);
        throw Error(what + " is not a regular file (a pipe or device cannot be mapped)");
    }
    if (st.st_size == 0) {
        ::close(fd);
        throw Error(what + " is an empty file");
    }
    size_ = size_t(st.st_size);
    void* p = ::mmap(nullptr, size_, PROT_READ, MAP_PRIVATE, fd, 0);
    const int err = errno;
    ::close(fd);  // the mapping keeps the file open
    if (p == MAP_FAILED)
        throw Error(what + ": cannot map the file into memory: " + std::strerror(err));
    ::madvise(p, size_, MADV_RANDOM);
    data_ = static_cast<const uint8_t*>(p);
}

MappedFile::~MappedFile() {
    if (data_) ::munmap(const_cast<uint8_t*>(data_), size_);
}

}  // namespace attnlab
