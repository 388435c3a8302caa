// http_server.cpp: the routes of `chronos serve` over cpp-httplib (http_server.h).
#include "server/http_server.h"

#include <httplib.h>
#include <pthread.h>
#include <signal.h>
#include <strings.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <memory>
#include <optional>
#include <thread>

#include "core/error.h"
#include "server/jobs.h"
#include "server/ui.h"
#include "tune/child_process.h"

namespace chronos::server {

using json = nlohmann::json;

namespace {

// Bodies keep invalid UTF-8 out of JSON text: a client gets U+FFFD rather than a broken stream.
std::string dump(const json& j) { return j.dump(-1, ' ', false, json::error_handler_t::replace); }

void send_error(httplib::Response& res, const ApiError& e) {
    res.status = e.status;
    res.set_content(dump(error_json(e)), "application/json");
}

// Constant-time comparison: the time a wrong key takes says nothing about how much of it matched.
bool same_secret(const std::string& a, const std::string& b) {
    unsigned char diff = a.size() == b.size() ? 0 : 1;
    for (size_t i = 0; i < a.size(); ++i) diff |= static_cast<unsigned char>(a[i] ^ (i < b.size() ? b[i] : 0));
    return diff == 0;
}

std::string request_id(const char* prefix) {
    static std::atomic<uint64_t> next{1};
    return fmt::format("{}-{:x}-{}", prefix, std::chrono::system_clock::now().time_since_epoch().count() & 0xffffffffffull, next++);
}

// What the headers alone refuse, before httplib reads a body: a compressed or chunked body
// (httplib would inflate or join it whole before any size check applies), and a Content-Length
// that is repeated, not a number, or over the limit. nullopt: the request may go on.
std::optional<ApiError> transport_refusal(const httplib::Request& req, uint64_t max_body_bytes) {
    const std::string encoding = req.get_header_value("Content-Encoding");
    if (!encoding.empty() && encoding != "identity") {
        return ApiError(415, "invalid_request_error", fmt::format("request bodies are not accepted compressed (Content-Encoding: {})", encoding));
    }
    if (req.has_header("Transfer-Encoding")) {
        return ApiError(411, "invalid_request_error", "send the request body with a Content-Length, not a Transfer-Encoding");
    }
    const size_t lengths = req.get_header_value_count("Content-Length");
    if (lengths > 1) return ApiError(400, "invalid_request_error", "more than one Content-Length header");
    if (lengths == 1) {
        const std::string v = req.get_header_value("Content-Length");
        if (v.empty() || v.size() > 19 || v.find_first_not_of("0123456789") != std::string::npos) {
            return ApiError(400, "invalid_request_error", fmt::format("Content-Length '{}' is not a byte count", v));
        }
        if (std::stoull(v) > max_body_bytes) return ApiError(413, "invalid_request_error", "the request body is too large");
    }
    return std::nullopt;
}

// The methods each route of the API answers, for the 405 of another method.
const char* allowed_methods(const std::string& path) {
    if (path == "/v1/completions" || path == "/v1/chat/completions") return "POST";
    if (path == "/health" || path == "/metrics" || path == "/v1/models" || path.rfind("/v1/models/", 0) == 0) return "GET";
    return nullptr;
}

int64_t now_s() { return std::chrono::duration_cast<std::chrono::seconds>(std::chrono::system_clock::now().time_since_epoch()).count(); }

void handle_completion(Engine& engine, const RequestLimits& limits, bool chat, const httplib::Request& req, httplib::Response& res) {
    CompletionRequest r;
    try {
        r = completion_parse(req.body, limits, chat);
        if (r.model != engine.model_id()) {
            throw ApiError(404, "invalid_request_error", fmt::format("the model '{}' does not exist; this server serves '{}'", r.model, engine.model_id()),
                           "model", "model_not_found");
        }
    } catch (const ApiError& e) {
        engine.count_failure();
        send_error(res, e);
        return;
    }
    // Requests wait for the one session; past the bound they are turned away, so that a worker
    // thread always remains for /health, /metrics and quick refusals.
    EngineTicket ticket(engine);
    if (!ticket.admitted()) {
        engine.count_failure();
        send_error(res, ApiError(503, "server_error", "the server is busy: too many requests are waiting; retry later", "", "server_busy"));
        return;
    }
    const std::string id = request_id(chat ? "chatcmpl" : "cmpl");
    const int64_t created = now_s();
    if (!r.stream) {
        try {
            const Engine::Result out = engine.complete(r, [](int64_t, const std::string&) { return true; });
            res.set_content(dump(completion_response(r, id, created, out.choices, out.usage)), "application/json");
        } catch (const ApiError& e) {
            engine.count_failure();
            send_error(res, e);
        }
        return;
    }
    // A prompt that does not fit must fail before the 200 of a stream is sent.
    try {
        engine.prompt_check(r);
    } catch (const ApiError& e) {
        engine.count_failure();
        send_error(res, e);
        return;
    }
    res.set_header("Cache-Control", "no-cache");
    auto held = std::make_shared<EngineTicket>(std::move(ticket));  // the stream keeps its place until it ends
    res.set_chunked_content_provider("text/event-stream", [&engine, r, id, created, held](size_t, httplib::DataSink& sink) {
        std::vector<bool> first(static_cast<size_t>(r.n), true);
        auto send = [&](const json& j) {
            const std::string line = "data: " + dump(j) + "\n\n";
            return sink.write(line.data(), line.size());
        };
        try {
            const Engine::Result out = engine.complete(r, [&](int64_t c, const std::string& piece) {
                const bool ok = send(completion_chunk(r, id, created, c, piece, "", first[static_cast<size_t>(c)], nullptr));
                first[static_cast<size_t>(c)] = false;
                return ok;
            });
            for (size_t c = 0; c < out.choices.size(); ++c) {
                send(completion_chunk(r, id, created, static_cast<int64_t>(c), "", out.choices[c].finish_reason, first[c], nullptr));
            }
            if (r.include_usage) send(completion_chunk(r, id, created, 0, "", "", false, &out.usage));
        } catch (const ApiError& e) {
            engine.count_failure();
            send(error_json(e));
        } catch (const std::exception& e) {
            // The 200 is sent: the failure goes down the stream as an error event. Nothing may
            // escape this callback, which httplib runs outside its exception handler.
            engine.count_failure();
            send(error_json(ApiError(500, "server_error", e.what())));
        } catch (...) {
            engine.count_failure();
            send(error_json(ApiError(500, "server_error", "internal error")));
        }
        held->release();
        const std::string done = "data: [DONE]\n\n";
        sink.write(done.data(), done.size());
        sink.done();
        return true;
    });
}

}  // namespace

void serve_run(const ServeOptions& o) {
    ::signal(SIGPIPE, SIG_IGN);  // a client that hangs up mid-stream is a failed write, not a dead server
    // SIGINT and SIGTERM go to one waiting thread; every thread created after this (OpenMP's,
    // httplib's workers) inherits the mask. While the model loads a signal ends the process
    // at once (nothing to clean up); once the server is up, it stops the server.
    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);
    httplib::Server svr;
    enum State { loading, serving, leaving };
    std::atomic<int> state{loading};
    std::atomic<bool> listen_done{false};
    std::thread waiter([&svr, &state, &listen_done, stop_signals] {
        int sig = 0;
        sigwait(&stop_signals, &sig);
        if (state.load() == leaving) return;
        if (state.load() == loading) std::_Exit(128 + sig);
        // stop() before listen has started would be lost: wait for it to run (or to have ended).
        while (!svr.is_running() && !listen_done.load()) std::this_thread::sleep_for(std::chrono::milliseconds(10));
        svr.stop();
    });
    struct JoinWaiter {  // on every way out (a failed load or bind too): wake the waiter, join it
        std::thread& t;
        std::atomic<int>& state;
        ~JoinWaiter() {
            state = leaving;
            pthread_kill(t.native_handle(), SIGTERM);
            t.join();
        }
    } join_waiter{waiter, state};
    Engine engine(o.engine, std::max(1, o.threads - 2));
    const int threads = std::max(1, o.threads);
    svr.new_task_queue = [threads] { return new httplib::ThreadPool(static_cast<size_t>(threads)); };
    svr.set_payload_max_length(static_cast<size_t>(o.max_body_bytes));
    svr.set_read_timeout(static_cast<time_t>(o.read_timeout_s), 0);
    // One request per connection. A request refused from its headers (below) leaves its body
    // unread, and cpp-httplib 0.11 keeps a connection open whatever the response says: the body
    // would be read as the next request (behind a proxy that reuses connections, a smuggled
    // one). Closing after each response also stops pipelined and idle connections from holding
    // workers.
    svr.set_keep_alive_max_count(1);
    // Streamed chunks are small writes: without TCP_NODELAY, Nagle holds each until the client
    // acknowledges the previous one, and a client that delays its ACKs sees tokens in bursts.
    svr.set_tcp_nodelay(true);

    // The UI's page and libraries hold no data: they load without the key, and the page sends
    // the key the user gives it with every API call.
    auto is_data_route = [](const std::string& path) {
        return path.rfind("/v1/", 0) == 0 || path == "/v1" || path.rfind("/metrics", 0) == 0 || path.rfind("/ui/api", 0) == 0;
    };
    // Runs on the headers, before httplib reads a body.
    svr.set_pre_routing_handler([&o, is_data_route](const httplib::Request& req, httplib::Response& res) {
        if (std::optional<ApiError> e = transport_refusal(req, static_cast<uint64_t>(o.max_body_bytes))) {
            send_error(res, *e);  // the body is left unread; the connection closes after this response
            return httplib::Server::HandlerResponse::Handled;
        }
        if (o.api_key.empty() || req.path == "/health" || (o.ui && !is_data_route(req.path))) return httplib::Server::HandlerResponse::Unhandled;
        const std::string auth = req.get_header_value("Authorization");
        // The scheme's name is case-insensitive (RFC 7235); the key is not.
        const bool bearer = auth.size() > 7 && strncasecmp(auth.c_str(), "Bearer ", 7) == 0;
        if (bearer && same_secret(auth.substr(7), o.api_key)) return httplib::Server::HandlerResponse::Unhandled;
        send_error(res, ApiError(401, "invalid_request_error", "a valid API key is required: Authorization: Bearer KEY", "", "invalid_api_key"));
        return httplib::Server::HandlerResponse::Handled;
    });
    // Errors httplib answers itself (404 of an unknown path, 413 of a large body, 400 of a
    // malformed request) get an error object too.
    svr.set_error_handler([](const httplib::Request& req, httplib::Response& res) {
        if (!res.body.empty()) return;
        // httplib answers 404 for a known path asked with another method.
        if (const char* allow = allowed_methods(req.path); res.status == 404 && allow != nullptr && req.method != allow) {
            res.status = 405;
            res.set_header("Allow", allow);
        }
        const std::string what = res.status == 404   ? fmt::format("no route {} {}", req.method, req.path)
                                 : res.status == 413 ? std::string("the request body is too large")
                                 : res.status == 405 ? fmt::format("{} is not allowed on {}", req.method, req.path)
                                                     : std::string("bad request");
        send_error(res, ApiError(res.status, "invalid_request_error", what));
    });
    svr.set_exception_handler([&engine](const httplib::Request&, httplib::Response& res, std::exception_ptr ep) {
        engine.count_failure();
        std::string what = "internal error";
        try {
            std::rethrow_exception(ep);
        } catch (const std::exception& e) {
            what = e.what();
        } catch (...) {
        }
        send_error(res, ApiError(500, "server_error", what));
    });

    svr.Get("/health", [](const httplib::Request&, httplib::Response& res) { res.set_content(R"({"status":"ok"})", "application/json"); });
    svr.Get("/v1/models", [&engine](const httplib::Request&, httplib::Response& res) {
        res.set_content(dump(models_response(engine.model_id(), engine.created())), "application/json");
    });
    svr.Get("/v1/models/(.+)", [&engine](const httplib::Request& req, httplib::Response& res) {
        if (req.matches[1] != engine.model_id()) {
            send_error(res, ApiError(404, "invalid_request_error", "no such model", "model", "model_not_found"));
            return;
        }
        res.set_content(dump(models_response(engine.model_id(), engine.created())["data"][0]), "application/json");
    });
    svr.Get("/metrics", [&engine](const httplib::Request&, httplib::Response& res) {
        res.set_content(engine.metrics_text(), "text/plain; version=0.0.4");
    });
    svr.Post("/v1/completions", [&](const httplib::Request& req, httplib::Response& res) { handle_completion(engine, o.limits, false, req, res); });
    svr.Post("/v1/chat/completions", [&](const httplib::Request& req, httplib::Response& res) { handle_completion(engine, o.limits, true, req, res); });

    std::unique_ptr<JobRunner> jobs;
    if (o.ui) {
        const std::filesystem::path self = tune::self_executable();
        jobs = std::make_unique<JobRunner>(".", (self.parent_path() / "chronos").string());
        ui_register(svr, engine, *jobs, ".");
    }

    int port = o.port;
    if (port == 0) {
        port = svr.bind_to_any_port(o.host);
        if (port <= 0) fail("cannot bind {} (any port)", o.host);
    } else if (!svr.bind_to_port(o.host, port)) {
        fail("cannot bind {}:{} (in use, or not an address of this machine)", o.host, port);
    }
    std::printf("chronos serve: model '%s' on http://%s:%d (%s mode%s)\n", engine.model_id().c_str(), o.host.c_str(), port, o.engine.mode.c_str(),
                o.api_key.empty() ? "" : ", API key required");
    std::fflush(stdout);
    state = serving;
    svr.listen_after_bind();
    listen_done = true;
}

}  // namespace chronos::server
