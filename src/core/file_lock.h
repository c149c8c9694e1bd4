// An exclusive lock on a folder: flock(2) on <dir>/.lock, which names the
// holder's pid. The kernel drops the lock when the holder exits or is killed,
// so a stale lock cannot outlive its process.
#pragma once
#include <sys/types.h>

#include <optional>
#include <string>

namespace attnlab {

// exclusive: one writer. shared: several cooperating processes (the array tasks of one
// Slurm sweep, each training its own runs) that exclude an exclusive holder.
enum class LockMode { exclusive, shared };

class FolderLock {
  public:
    // Takes the lock on `dir` (which must exist), waiting up to wait_s seconds for a
    // holder to let go. Throws Error naming `what` ("run folder", "sweep folder"), the
    // folder and the holder's pid when another process holds it.
    FolderLock(const std::string& dir, const std::string& what, double wait_s = 0,
               LockMode mode = LockMode::exclusive);
    ~FolderLock();
    FolderLock(const FolderLock&) = delete;
    FolderLock& operator=(const FolderLock&) = delete;

    static constexpr const char* kFileName = ".lock";

  private:
    int fd_ = -1;
};

// The pid of the process that holds dir's lock, if one does (a probe: takes and drops it).
std::optional<pid_t> folder_lock_holder(const std::string& dir);

}  // namespace attnlab
