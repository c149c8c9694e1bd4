// Folder locks with flock(2); the lock file holds the holder's pid for messages.
#include "core/file_lock.h"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>
#include <thread>

#include "core/error.h"

namespace attnlab {

namespace {

std::string lock_path(const std::string& dir) {
    return dir + "/" + FolderLock::kFileName;
}

std::optional<pid_t> read_pid(int fd) {
    char buf[32] = {};
    const ssize_t n = ::pread(fd, buf, sizeof buf - 1, 0);
    if (n <= 0) return std::nullopt;
    char* end = nullptr;
    const long pid = std::strtol(buf, &end, 10);
    if (pid <= 0 || end == buf) return std::nullopt;
    return pid_t(pid);
}

// Takes the lock on an open lock file, waiting up to wait_s; false when it stays held.
bool take(int fd, double wait_s, LockMode mode) {
    const auto deadline = std::chrono::steady_clock::now() + std::chrono::duration<double>(wait_s);
    for (;;) {
        if (::flock(fd, (mode == LockMode::shared ? LOCK_SH : LOCK_EX) | LOCK_NB) == 0) return true;
        if (errno == EINTR) continue;
        if (errno != EWOULDBLOCK) throw Error(std::string("flock failed: ") + std::strerror(errno));
        if (std::chrono::steady_clock::now() >= deadline) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
}

int open_lock_file(const std::string& dir, const std::string& what) {
    const int fd = ::open(lock_path(dir).c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0)
        throw Error("cannot lock " + what + " '" + dir + "' (" + lock_path(dir) +
                    "): " + std::strerror(errno));
    return fd;
}

}  // namespace

FolderLock::FolderLock(const std::string& dir, const std::string& what, double wait_s,
                       LockMode mode) {
    fd_ = open_lock_file(dir, what);
    bool ok = false;
    try {
        ok = take(fd_, wait_s, mode);
    } catch (const Error& e) {
        ::close(fd_);
        throw Error("cannot lock " + what + " '" + dir + "': " + e.what());
    }
    if (!ok) {
        const auto pid = read_pid(fd_);
        ::close(fd_);
        throw Error(what + " '" + dir + "' is in use by " +
                    (pid ? "process " + std::to_string(*pid) : std::string("another process")) +
                    " (an attnlab train or sweep writing it); wait for it to finish or stop it, "
                    "or choose another folder");
    }
    // Name the holder for the next one who tries.
    const std::string pid = std::to_string(::getpid()) + "\n";
    if (::ftruncate(fd_, 0) != 0 ||
        ::pwrite(fd_, pid.data(), pid.size(), 0) != ssize_t(pid.size())) {
        // The lock holds without the pid; messages then say "another process".
    }
}

FolderLock::~FolderLock() {
    if (fd_ >= 0) ::close(fd_);  // closing the last descriptor drops the lock
}

std::optional<pid_t> folder_lock_holder(const std::string& dir) {
    const int fd = ::open(lock_path(dir).c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return std::nullopt;
    std::optional<pid_t> holder;
    if (::flock(fd, LOCK_SH | LOCK_NB) != 0 && errno == EWOULDBLOCK)
        holder = read_pid(fd).value_or(0);
    ::close(fd);
    return holder;
}

}  // namespace attnlab
