// Whole-file reads with a regular-file check and a size cap.
#include "core/read_file.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/error.h"

namespace attnlab {

namespace {

std::string mib(size_t bytes) {
    return std::to_string(bytes / (1024 * 1024)) + " MiB";
}

void check_stat(const struct stat& st, const std::string& what) {
    if (S_ISDIR(st.st_mode)) throw Error(what + " is a folder, not a file");
    if (!S_ISREG(st.st_mode))
        throw Error(what +
                    " is not a regular file (a pipe, device or socket cannot be read as one)");
}

}  // namespace

void check_regular_file(const std::string& path, const std::string& what) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0) throw Error(what + ": " + std::strerror(errno));
    check_stat(st, what);
}

std::string read_regular_file(const std::string& path, const std::string& what, size_t max_bytes) {
    check_regular_file(path, what);
    // O_NONBLOCK: should the path turn into a FIFO between stat and open, open still returns.
    const int fd = ::open(path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) throw Error(what + ": cannot open it: " + std::strerror(errno));
    struct stat st {};
    if (::fstat(fd, &st) != 0) {
        const int err = errno;
        ::close(fd);
        throw Error(what + ": cannot read its size: " + std::strerror(err));
    }
    try {
        check_stat(st, what);
    } catch (...) {
        ::close(fd);
        throw;
    }
    if (size_t(st.st_size) > max_bytes) {
        ::close(fd);
        throw Error(
            what + " is " + std::to_string(st.st_size) + " bytes; the limit is " +
            (max_bytes >= 1024 * 1024 ? mib(max_bytes) : std::to_string(max_bytes) + " bytes"));
    }
    std::string out(size_t(st.st_size), '\0');
    size_t got = 0;
    while (got < out.size()) {
        const ssize_t r = ::read(fd, out.data() + got, out.size() - got);
        if (r < 0 && errno == EINTR) continue;
        if (r < 0) {
            const int err = errno;
            ::close(fd);
            throw Error(what + ": cannot read it: " + std::strerror(err));
        }
        if (r == 0) break;  // shrank while reading
        got += size_t(r);
    }
    ::close(fd);
    out.resize(got);
    return out;
}

}  // namespace attnlab
