// Crash-safe writes: a file is written to a temporary in the same folder,
// fsynced, renamed over its name and the folder fsynced, so a kill or a full
// disk leaves either the old file or the new one, never a mix. Crash points
// (ATTNLAB_CRASH_AT=N kills the process at the N-th one) let tests kill a run
// at every write and rename.
#pragma once
#include <cstddef>
#include <string>

namespace attnlab {

// Writes bytes to path through "<path>.tmp.<pid>", fsync, rename and a folder fsync.
// Throws Error naming the path on any failure (open, write, fsync, close, rename);
// an earlier file of that name is then intact and the temporary removed.
void write_file_atomic(const std::string& path, const void* data, size_t nbytes);
void write_text_atomic(const std::string& path, const std::string& text);

// rename(2), then fsync of the destination's folder (and the source's if different).
void rename_durable(const std::string& from, const std::string& to);
// fsync of a folder, so renames and removals in it survive a power loss.
void sync_folder(const std::string& dir);

// Removes the temporaries ("<name>.tmp.<digits>") that a killed writer left in dir.
// Call it only while holding the folder's lock (a live writer's temporaries look the same).
// Returns how many were removed.
int remove_stale_temps(const std::string& dir);

// A named point in a multi-step write. With ATTNLAB_CRASH_AT=N in the environment the
// process kills itself (SIGKILL) at the N-th crash point it reaches; with
// ATTNLAB_CRASH_TRACE=1 it prints every point to stderr. Otherwise a counter increment.
void crash_point(const char* what, const std::string& path);

}  // namespace attnlab
