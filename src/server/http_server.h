// http_server.h: `chronos serve`, the OpenAI-compatible HTTP API over one Engine (engine.h).
//
//   GET  /health                 {"status": "ok"} (no key needed)
//   GET  /v1/models              the served model
//   POST /v1/completions         prompt -> text; "stream": true sends server-sent events
//   POST /v1/chat/completions    messages (the chat template) -> reply; same streaming
//   GET  /metrics                Prometheus text: requests, tokens, tok/s, expert hits, misses,
//                                late misses, fallbacks, stall, bytes read, resident bytes
//
// Bounds: the body size, max_tokens, n, stop sequences, concurrent connections (the worker
// threads; more wait in the kernel's accept queue) and the time a request may generate. With
// an API key every endpoint but /health needs `Authorization: Bearer KEY` (401 otherwise).
// Every error is an OpenAI error object: a 4xx for what the request did wrong, 503 when too many
// requests already wait for the model, 500 for a failure of the server's own; it keeps serving.
//
//     chronos::server::ServeOptions o;
//     o.engine.model_dir = "runs/small";
//     chronos::server::serve_run(o);  // blocks until SIGINT or SIGTERM
#pragma once

#include <cstdint>
#include <string>

#include "server/engine.h"

namespace chronos::server {

struct ServeOptions {
    EngineOptions engine;
    std::string host = "127.0.0.1";
    int port = 8080;
    std::string api_key;            // empty: no key required
    int64_t max_body_bytes = 1 << 20;
    int threads = 8;                // concurrent connections served at once
    RequestLimits limits;
    double read_timeout_s = 30;     // to receive a request
    bool ui = false;                // serve the web UI at / (ui.h) from the working directory
};

// Binds, prints the address, serves until SIGINT/SIGTERM. Fails with a clear message when the
// address cannot be bound.
void serve_run(const ServeOptions& options);

}  // namespace chronos::server
