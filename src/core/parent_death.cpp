// PR_SET_PDEATHSIG for child runs, with the check for a parent that died first.
#include "core/parent_death.h"

#include <signal.h>
#include <sys/prctl.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>

extern char** environ;

namespace attnlab {

std::vector<std::string> child_environment() {
    std::vector<std::string> env;
    const std::string prefix = std::string(kParentPidEnv) + "=";
    for (char** e = environ; e && *e; e++)
        if (std::strncmp(*e, prefix.c_str(), prefix.size()) != 0) env.emplace_back(*e);
    env.push_back(prefix + std::to_string(::getpid()));
    return env;
}

std::vector<char*> environment_pointers(std::vector<std::string>& env) {
    std::vector<char*> p;
    for (auto& e : env) p.push_back(e.data());
    p.push_back(nullptr);
    return p;
}

void die_with_parent_if_asked() {
    const char* s = std::getenv(kParentPidEnv);
    if (!s || !*s) return;
    const long parent = std::atol(s);
    ::unsetenv(kParentPidEnv);  // not for this process's own children
    if (parent <= 0) return;
    ::prctl(PR_SET_PDEATHSIG, SIGKILL);
    // The parent may have died between our fork and the prctl: we were reparented.
    if (::getppid() != pid_t(parent)) std::_Exit(3);
}

}  // namespace attnlab
