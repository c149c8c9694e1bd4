// Atomic, durable file writes (temporary + fsync + rename + folder fsync) and crash points.
#include "core/atomic_file.h"

#include <dirent.h>
#include <fcntl.h>
#include <fmt/core.h>
#include <signal.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "core/error.h"

namespace attnlab {

namespace fs = std::filesystem;

void crash_point(const char* what, const std::string& path) {
    static const long crash_at = [] {
        const char* s = std::getenv("ATTNLAB_CRASH_AT");
        return s ? std::atol(s) : 0L;
    }();
    static const bool trace = [] {
        const char* s = std::getenv("ATTNLAB_CRASH_TRACE");
        return s && *s && std::strcmp(s, "0") != 0;
    }();
    static long count = 0;
    count++;
    if (trace) fmt::print(stderr, "crash point {}: {} {}\n", count, what, path);
    if (crash_at > 0 && count == crash_at) ::kill(::getpid(), SIGKILL);
}

static std::string parent_of(const std::string& path) {
    const std::string p = fs::path(path).parent_path().string();
    return p.empty() ? "." : p;
}

void sync_folder(const std::string& dir) {
    const int fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd < 0) throw Error("cannot open folder '" + dir + "' to sync it: " + std::strerror(errno));
    const int rc = ::fsync(fd);
    const int err = errno;
    ::close(fd);
    // Some file systems cannot sync folders (EINVAL); the data files themselves were synced.
    if (rc != 0 && err != EINVAL && err != EROFS)
        throw Error("cannot sync folder '" + dir + "': " + std::strerror(err));
}

void rename_durable(const std::string& from, const std::string& to) {
    if (::rename(from.c_str(), to.c_str()) != 0)
        throw Error("cannot rename '" + from + "' to '" + to + "': " + std::strerror(errno));
    crash_point("renamed", to);
    sync_folder(parent_of(to));
    if (parent_of(from) != parent_of(to)) sync_folder(parent_of(from));
}

void write_file_atomic(const std::string& path, const void* data, size_t nbytes) {
    const std::string tmp = path + ".tmp." + std::to_string(::getpid());
    const int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
    if (fd < 0) throw Error("cannot write '" + path + "': " + std::strerror(errno));
    auto fail = [&](const char* step, int err, bool close_fd) {
        if (close_fd) ::close(fd);
        ::unlink(tmp.c_str());
        return Error("cannot write '" + path + "' (" + step + "): " + std::strerror(err));
    };
    const auto* p = static_cast<const char*>(data);
    size_t left = nbytes;
    while (left > 0) {
        const ssize_t w = ::write(fd, p, left);
        if (w < 0) {
            if (errno == EINTR) continue;
            throw fail("write", errno, true);
        }
        p += w, left -= size_t(w);
    }
    crash_point("wrote", tmp);
    if (::fsync(fd) != 0) throw fail("fsync", errno, true);
    if (::close(fd) != 0) throw fail("close", errno, false);
    if (::rename(tmp.c_str(), path.c_str()) != 0) throw fail("rename", errno, false);
    crash_point("renamed", path);
    sync_folder(parent_of(path));
}

void write_text_atomic(const std::string& path, const std::string& text) {
    write_file_atomic(path, text.data(), text.size());
}

// "<name>.tmp.<digits>": the temporaries of write_file_atomic.
static bool is_temp_name(const std::string& name) {
    const size_t at = name.rfind(".tmp.");
    if (at == std::string::npos || at == 0 || at + 5 == name.size()) return false;
    for (size_t i = at + 5; i < name.size(); i++)
        if (name[i] < '0' || name[i] > '9') return false;
    return true;
}

int remove_stale_temps(const std::string& dir) {
    int removed = 0;
    std::error_code ec;
    for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
        if (!is_temp_name(it->path().filename().string())) continue;
        std::error_code rm;
        if (!it->is_directory(rm) && fs::remove(it->path(), rm)) removed++;
    }
    return removed;
}

}  // namespace attnlab
