// child_process.h: the processes a tuning study (and a pipeline) runs. Each child gets its own process group
// (a timeout or the pruner stops it with everything it started) and dies with the tuner
// (PR_SET_PDEATHSIG), so a killed tuner leaves no trial running behind it. The argv is passed
// as a list to execvp: no shell ever parses a parameter's value.
#pragma once

#include <sys/types.h>

#include <string>
#include <utility>
#include <vector>

namespace chronos::tune {

struct ChildSpec {
    std::vector<std::string> argv;
    std::string stdout_path, stderr_path;                  // appended to; empty: this process's own
    std::vector<std::pair<std::string, std::string>> env;  // set in the child
};

// Starts the child; fails when fork fails. A failed exec exits the child with status 127.
pid_t child_start(const ChildSpec& c);
// Non-blocking: false while it runs; true once it ended, with its exit status in *status
// (128 + signal for a signal).
bool child_poll(pid_t pid, int* status);
// SIGKILL to its process group, then reaps it.
void child_kill(pid_t pid);

// The path of the running executable (/proc/self/exe): children run `chronos` itself.
std::string self_executable();

// The argv as one line a user could paste into a shell (single-quoted where needed).
std::string command_line(const std::vector<std::string>& argv);

}  // namespace chronos::tune
