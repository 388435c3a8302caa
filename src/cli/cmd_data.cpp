// cmd_data.cpp: `chronos data prepare` and `chronos data stats`.
#include <spdlog/spdlog.h>

#include <iostream>
#include <memory>

#include "cli/commands.h"
#include "data/prepare.h"
#include "data/stats.h"

namespace chronos {

void cmd_data_register(CLI::App& app) {
    CLI::App* data = app.add_subcommand("data", "prepare and describe the datasets");
    data->require_subcommand(1);

    auto prepare_opts = std::make_shared<PrepareOptions>();
    auto raw_dir = std::make_shared<std::string>("data/raw");
    prepare_opts->out_dir = "data/prepared";
    CLI::App* prepare = data->add_subcommand("prepare", "build train/validation/test JSONL splits from the real corpora");
    prepare->add_option("--raw", *raw_dir, "directory scripts/setup.sh filled with npm corpora and the KJV text")->capture_default_str();
    prepare->add_option("--out", prepare_opts->out_dir, "output directory")->capture_default_str();
    prepare->add_option("--chunk-chars", prepare_opts->max_chunk_chars, "pretraining record size in characters")->capture_default_str()->check(CLI::Range(200, 100000));
    prepare->add_option("--arithmetic", prepare_opts->arithmetic_items, "generated arithmetic problems")->capture_default_str()->check(CLI::Range(2, 1000000));
    prepare->add_option("--seed", prepare_opts->seed, "seed of the arithmetic generator")->capture_default_str();
    prepare->callback([prepare_opts, raw_dir]() {
        prepare_opts->paths = source_paths_default(*raw_dir);
        SplitTable table = data_prepare(*prepare_opts);
        std::cout << "prepared " << prepare_opts->out_dir << "\n" << split_table_format(table);
    });

    auto stats_dir = std::make_shared<std::string>("data/prepared");
    auto stats_tok = std::make_shared<std::string>();
    auto stats_json = std::make_shared<bool>(false);
    CLI::App* stats = data->add_subcommand("stats", "records, words and tokens per kind and split");
    stats->add_option("--data", *stats_dir, "prepared data directory")->capture_default_str();
    stats->add_option("--tokenizer", *stats_tok, "tokenizer .model to count tokens with");
    stats->add_flag("--json", *stats_json, "print JSON");
    stats->callback([stats_dir, stats_tok, stats_json]() {
        std::unique_ptr<Tokenizer> tok;
        if (!stats_tok->empty()) tok = std::make_unique<Tokenizer>(*stats_tok);
        SplitTable table = data_stats(*stats_dir, tok.get());
        if (*stats_json) std::cout << split_table_json(table).dump(2) << "\n";
        else std::cout << split_table_format(table);
    });
}

}  // namespace chronos
