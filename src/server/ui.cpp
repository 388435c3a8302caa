// ui.cpp: the web UI's routes (ui.h).
#include "server/ui.h"

#include <httplib.h>
#include <fmt/format.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <thread>

#include "core/error.h"
#include "format/model_config.h"
#include "format/named_config.h"
#include "runtime/estimate.h"
#include "runtime/generate.h"
#include "server/engine.h"
#include "server/jobs.h"
#include "server/openai_protocol.h"

namespace chronos::server {

namespace fs = std::filesystem;
using json = nlohmann::json;

namespace {

void send_json(httplib::Response& res, const json& j) {
    res.set_content(j.dump(-1, ' ', false, json::error_handler_t::replace), "application/json");
}

void send_api_error(httplib::Response& res, const ApiError& e) {
    res.status = e.status;
    send_json(res, error_json(e));
}

// Runs a route's body; an ApiError becomes its status and error object, anything else a 400
// (what the UI sends is checked by the code it reaches: a bad config is the request's fault).
template <typename F>
void guarded(httplib::Response& res, F&& body) {
    try {
        body();
    } catch (const ApiError& e) {
        send_api_error(res, e);
    } catch (const std::exception& e) {
        send_api_error(res, ApiError(400, "invalid_request_error", e.what()));
    }
}

json body_json(const httplib::Request& req) {
    const json j = json::parse(req.body, nullptr, /*allow_exceptions=*/false);
    if (!j.is_object()) throw ApiError(400, "invalid_request_error", "the body must be a JSON object");
    return j;
}

}  // namespace

void ui_register(httplib::Server& svr, Engine& engine, JobRunner& jobs, const std::string& root) {
    const fs::path web = fs::path(root) / "web";
    const fs::path uplot = fs::path(root) / ".deps" / "npm" / "node_modules" / "uplot" / "dist";
    if (!fs::is_regular_file(web / "index.html")) fail("--ui: no web/index.html in {} (run the server from the project folder)", root);
    if (!fs::is_regular_file(uplot / "uPlot.iife.min.js")) fail("--ui: the chart library is missing ({}); run scripts/setup.sh", uplot.string());
    // httplib serves these folders' files only (it refuses paths that climb out of them).
    if (!svr.set_mount_point("/", web.string())) fail("--ui: cannot serve {}", web.string());
    if (!svr.set_mount_point("/assets/uplot", uplot.string())) fail("--ui: cannot serve {}", uplot.string());

    svr.Get("/ui/api/info", [&engine](const httplib::Request&, httplib::Response& res) { send_json(res, engine.info_json()); });
    svr.Post("/ui/api/engine", [&engine](const httplib::Request& req, httplib::Response& res) {
        guarded(res, [&] {
            const json b = body_json(req);
            if (!b.contains("mode") || !b["mode"].is_string()) throw ApiError(400, "invalid_request_error", "'mode' is required", "mode");
            if (!b.contains("ram_budget") || !b["ram_budget"].is_string()) {
                throw ApiError(400, "invalid_request_error", "'ram_budget' is required", "ram_budget");
            }
            engine.reconfigure(b["mode"].get<std::string>(), b["ram_budget"].get<std::string>());
            send_json(res, engine.info_json());
        });
    });
    svr.Get("/ui/api/choices", [&jobs](const httplib::Request&, httplib::Response& res) { guarded(res, [&] { send_json(res, jobs.choices()); }); });
    svr.Get("/ui/api/estimate", [&jobs](const httplib::Request& req, httplib::Response& res) {
        guarded(res, [&] {
            const fs::path path = jobs.config_path(req.get_param_value("config"));
            const ModelConfig c = named_config_load(path.string()).model;
            rt::EstimateOptions o;
            const std::string budget = req.get_param_value("ram_budget");
            rt::Estimate all = rt::estimate_config(c, o);
            if (!budget.empty()) o.ram_budget = rt::budget_parse(budget, all.experts_total_bytes);
            send_json(res, rt::estimate_json(rt::estimate_config(c, o)));
        });
    });
    svr.Get("/ui/api/pipeline", [&jobs](const httplib::Request& req, httplib::Response& res) {
        guarded(res, [&] {
            std::ifstream in(jobs.config_path(req.get_param_value("config")));
            const json cfg = json::parse(in, nullptr, /*allow_exceptions=*/false);
            json stages = json::array();
            if (cfg.is_object() && cfg.contains("stages") && cfg["stages"].is_array()) {
                for (const json& s : cfg["stages"]) stages.push_back({{"name", s.value("name", "")}, {"data", s.value("data", "")}, {"steps", s.value("steps", 0)}});
            }
            send_json(res, {{"stages", stages}});
        });
    });
    svr.Get("/ui/api/jobs", [&jobs](const httplib::Request&, httplib::Response& res) { guarded(res, [&] { send_json(res, jobs.list()); }); });
    svr.Post("/ui/api/jobs", [&jobs](const httplib::Request& req, httplib::Response& res) {
        guarded(res, [&] { send_json(res, {{"id", jobs.start(body_json(req))}}); });
    });
    svr.Get("/ui/api/jobs/([A-Za-z0-9_-]+)", [&jobs](const httplib::Request& req, httplib::Response& res) {
        guarded(res, [&] { send_json(res, jobs.describe(req.matches[1])); });
    });
    svr.Post("/ui/api/jobs/([A-Za-z0-9_-]+)/cancel", [&jobs](const httplib::Request& req, httplib::Response& res) {
        guarded(res, [&] {
            jobs.cancel(req.matches[1]);
            send_json(res, jobs.describe(req.matches[1]));
        });
    });
    svr.Post("/ui/api/jobs/([A-Za-z0-9_-]+)/apply", [&jobs](const httplib::Request& req, httplib::Response& res) {
        guarded(res, [&] {
            const json b = body_json(req);
            if (!b.contains("name") || !b["name"].is_string()) throw ApiError(400, "invalid_request_error", "'name' is required", "name");
            send_json(res, {{"config", jobs.apply_best(req.matches[1], b["name"].get<std::string>())}});
        });
    });
    // Twice a second until the page goes away (a failed write) or the server stops.
    svr.Get("/ui/api/monitor", [&engine, &svr](const httplib::Request&, httplib::Response& res) {
        res.set_header("Cache-Control", "no-cache");
        res.set_chunked_content_provider("text/event-stream", [&engine, &svr](size_t, httplib::DataSink& sink) {
            while (svr.is_running()) {
                const std::string line = "data: " + engine.monitor_json().dump() + "\n\n";
                if (!sink.write(line.data(), line.size())) return false;
                std::this_thread::sleep_for(std::chrono::milliseconds(500));
            }
            sink.done();
            return true;
        });
    });
}

}  // namespace chronos::server
