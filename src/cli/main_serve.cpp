// main_serve.cpp: `chronos-serve`, the process of `chronos serve` (src/server/). Users reach it
// through `chronos`, which hands the command over (main.cpp). It links the runtime and the HTTP
// library, never libtorch.
#include "cli/app.h"
#include "cli/commands.h"

static void register_commands(CLI::App& app) { chronos::cmd_serve_register(app); }

int main(int argc, char** argv) { return chronos::cli_run(argc, argv, register_commands); }
