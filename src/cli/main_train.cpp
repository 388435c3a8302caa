// main_train.cpp: `chronos-train`, the process that runs what needs the libtorch model (and
// igraph): train (pretrain, lookahead, intent), eval, trace, pack, init, bench pretrain-report
// and bench eager-decode. Users reach it through `chronos`, which hands these commands over
// (main.cpp); the distributed launcher re-runs it as its workers.
#include <malloc.h>

#include "cli/app.h"
#include "cli/commands.h"

// glibc maps blocks above its mmap threshold (128 KB-32 MB) and unmaps them on free, so every
// training step re-faulted and re-zeroed the same activation buffers (page faults and page
// clearing were ~6% of a `small` pretraining profile). Serving every block from the heap (no
// mmap) and never trimming it keeps them: +3-11% from blocks up to 32 MB, another +7-14% from
// the larger ones (the [tokens, vocab] logits and their gradients) in interleaved runs
// (docs/experiments.md). The inference process keeps glibc's defaults: it frees little.
static void malloc_keep_freed_blocks() {
    mallopt(M_MMAP_MAX, 0);
    mallopt(M_TRIM_THRESHOLD, 1 << 30);
}

static void register_commands(CLI::App& app) {
    chronos::cmd_train_register(app);
    chronos::cmd_eval_register(app);
    chronos::cmd_pack_register(app);
    chronos::cmd_bench_train_register(app);
}

int main(int argc, char** argv) {
    malloc_keep_freed_blocks();
    return chronos::cli_run(argc, argv, register_commands);
}
