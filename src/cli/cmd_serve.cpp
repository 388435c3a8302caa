// cmd_serve.cpp: `chronos serve`, the OpenAI-compatible server (src/server/http_server.h).
#include <omp.h>

#include <memory>

#include "cli/commands.h"
#include "cli/options.h"
#include "core/blas_info.h"
#include "server/http_server.h"

namespace chronos {

void cmd_serve_register(CLI::App& app) {
    auto o = std::make_shared<server::ServeOptions>();
    auto threads = std::make_shared<int>(0);
    CLI::App* s = app.add_subcommand("serve", "OpenAI-compatible HTTP server on the offload runtime (docs/serve.md)");
    s->add_option("--model", o->engine.model_dir, "checkpoint directory with packed experts (chronos pack)")->required();
    s->add_option("--model-id", o->engine.model_id, "the model name clients send (default: the folder's name)");
    s->add_option("--host", o->host, "address to bind (loopback unless told otherwise)")->capture_default_str();
    s->add_option("--port", o->port, "port (0: any free port, printed)")->capture_default_str()->check(CLI::Range(0, 65535));
    s->add_option("--mode", o->engine.mode, "miss policy: exact (wait), soft (shared expert stands in), lru, resident")->capture_default_str();
    s->add_option("--ram-budget", o->engine.ram_budget, "RAM for experts: auto, a share (25%) or bytes (512M)")->capture_default_str();
    s->add_option("--api-key", o->api_key, "require Authorization: Bearer KEY on every endpoint but /health");
    s->add_option("--max-body-bytes", o->max_body_bytes, "largest request body")->capture_default_str()->check(cli_range(1024, 1 << 30));
    s->add_option("--max-tokens-limit", o->limits.max_tokens, "largest max_tokens a request may ask for")->capture_default_str()->check(cli_range(1, 1 << 20));
    s->add_option("--max-n", o->limits.max_n, "most completions per request")->capture_default_str()->check(cli_range(1, 128));
    s->add_option("--max-batch", o->engine.max_batch, "sequences decoded together (continuous batching); more wait")
        ->capture_default_str()->check(cli_range(1, 256));
    s->add_option("--max-connections", o->threads, "connections served at once (more wait)")->capture_default_str()->check(cli_range(1, 1024));
    s->add_option("--request-timeout", o->engine.request_timeout_s, "seconds a request may generate before it ends with finish_reason length")
        ->capture_default_str()->check(cli_range(0.001, 1e6));
    s->add_flag("--ui", o->ui, "serve the web UI at / (run from the project folder: web/, configs/, data/, runs/)");
    s->add_option("--threads", *threads, "threads for OpenMP and BLAS")->check(cli_range(0, kMaxThreads));
    s->callback([o, threads]() {
        const int t = *threads > 0 ? *threads : cli_globals().threads;
        if (t > 0) {
            o->engine.threads = t;
            omp_set_num_threads(t);
            blas_set_threads(t);
        }
        server::serve_run(*o);
    });
}

}  // namespace chronos
