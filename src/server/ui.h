// ui.h: the web UI of `chronos serve --ui` — the page (web/ in the project folder, front-end
// libraries from .deps/npm) and the routes it calls under /ui/api:
//
//   GET  /ui/api/info               the served model: name, mode, RAM budget, layers, experts
//   POST /ui/api/engine             {mode, ram_budget}: serve with another miss mode and budget
//   GET  /ui/api/choices            configs, pipeline and tune files, data files, packed models
//   GET  /ui/api/pipeline?config=NAME   a pipeline file's stages (name, data, steps)
//   GET  /ui/api/estimate?config=NAME&ram_budget=X   rt::estimate_config (also `chronos estimate`)
//   GET  /ui/api/jobs               every job the UI started; POST starts one (jobs.h)
//   GET  /ui/api/jobs/ID            one job: state, command, log records, output, results
//   POST /ui/api/jobs/ID/cancel     stops it
//   POST /ui/api/jobs/ID/apply      a tune job's best trial -> configs/NAME.json
//   GET  /ui/api/monitor            server-sent events, twice a second: the engine's counters
//                                   and which experts are resident per layer
//
// The project folder is the server's working directory: it must hold web/, configs/, data/ and
// runs/. The API key, when set, guards these routes as it guards /v1.
//
//     chronos::server::ui_register(server, engine, jobs, ".");
#pragma once

#include <string>

namespace httplib {
class Server;
}

namespace chronos::server {

class Engine;
class JobRunner;

void ui_register(httplib::Server& svr, Engine& engine, JobRunner& jobs, const std::string& root);

}  // namespace chronos::server
