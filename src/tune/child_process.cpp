// child_process.cpp: fork/exec of trial commands (child_process.h).
#include "tune/child_process.h"

#include <fcntl.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <filesystem>

#include "core/error.h"

namespace chronos::tune {

pid_t child_start(const ChildSpec& c) {
    CHRONOS_ASSERT(!c.argv.empty(), "a command has a program");
    // Everything the child needs is prepared before fork: after it, only async-signal-safe calls.
    std::vector<char*> argv;
    for (const auto& a : c.argv) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    const pid_t parent = ::getpid();
    const pid_t pid = ::fork();
    if (pid < 0) fail("cannot start {}: {}", c.argv[0], std::strerror(errno));
    if (pid == 0) {
        ::setpgid(0, 0);
        ::prctl(PR_SET_PDEATHSIG, SIGKILL);
        if (::getppid() != parent) ::_exit(125);  // the tuner died before prctl took effect
        const int in = ::open("/dev/null", O_RDONLY);
        const int out = c.stdout_path.empty() ? 1 : ::open(c.stdout_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        const int err = c.stderr_path.empty() ? 2 : ::open(c.stderr_path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
        if (in < 0 || out < 0 || err < 0) ::_exit(126);
        ::dup2(in, 0);
        if (out != 1) ::dup2(out, 1);
        if (err != 2) ::dup2(err, 2);
        for (const auto& [k, v] : c.env) ::setenv(k.c_str(), v.c_str(), 1);
        ::execvp(argv[0], argv.data());
        const char* m = "chronos tune: cannot execute the trial's command\n";
        (void)!::write(2, m, std::strlen(m));
        ::_exit(127);
    }
    ::setpgid(pid, pid);  // also from the parent, so that a kill right after start reaches the group
    return pid;
}

bool child_poll(pid_t pid, int* status) {
    int st = 0;
    const pid_t r = ::waitpid(pid, &st, WNOHANG);
    if (r == 0) return false;
    if (r < 0) {
        *status = 255;
        return true;
    }
    *status = WIFEXITED(st) ? WEXITSTATUS(st) : 128 + (WIFSIGNALED(st) ? WTERMSIG(st) : 0);
    return true;
}

void child_kill(pid_t pid) {
    ::kill(-pid, SIGKILL);
    ::kill(pid, SIGKILL);
    int st = 0;
    while (::waitpid(pid, &st, 0) < 0 && errno == EINTR) {
    }
}

std::string self_executable() {
    std::error_code ec;
    const std::filesystem::path p = std::filesystem::read_symlink("/proc/self/exe", ec);
    if (ec) fail("cannot find the chronos executable (/proc/self/exe)");
    return p.string();
}

std::string command_line(const std::vector<std::string>& argv) {
    std::string out;
    for (const auto& a : argv) {
        if (!out.empty()) out += ' ';
        const bool plain = !a.empty() && a.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_-.,/=:+%@") == std::string::npos;
        if (plain) {
            out += a;
            continue;
        }
        out += '\'';
        for (char ch : a) out += ch == '\'' ? std::string("'\\''") : std::string(1, ch);
        out += '\'';
    }
    return out;
}

}  // namespace chronos::tune
