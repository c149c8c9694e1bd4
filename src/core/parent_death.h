// Child processes that must not outlive their parent: a sweep's `attnlab train`
// runs get ATTNLAB_PARENT_PID in their environment and ask the kernel
// (PR_SET_PDEATHSIG) to kill them when that parent dies, even by SIGKILL.
#pragma once
#include <string>
#include <vector>

namespace attnlab {

inline constexpr const char* kParentPidEnv = "ATTNLAB_PARENT_PID";

// This process's environment with ATTNLAB_PARENT_PID=<this pid>, for posix_spawn.
std::vector<std::string> child_environment();
// Null-terminated pointers into `env`, the form posix_spawn and execve take.
std::vector<char*> environment_pointers(std::vector<std::string>& env);

// When ATTNLAB_PARENT_PID is set: the kernel SIGKILLs this process when its parent
// exits; if that parent is gone already (it died before this call), exits now (code 3).
void die_with_parent_if_asked();

}  // namespace attnlab
