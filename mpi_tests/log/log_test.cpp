// SPDX-License-Identifier: Apache-2.0
// The log lines a program receives through LogOptions::sink: what each says (path, counter, bytes,
// GB/s, level), on which ranks, and at which levels, with CAIRN_LOG overriding the options.
#include <gtest/gtest.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <regex>
#include <string>
#include <vector>

#include "cairn/cairn.hpp"
#include "support/test_support.hpp"

namespace cairn {
namespace {

namespace fs = std::filesystem;
using testing::scratch_dir;

struct Captured {
  std::vector<std::string> lines;
  std::vector<LogLevel> levels;
  std::vector<int> ranks;
  // Lines that contain `text`.
  std::vector<std::string> with(const std::string& text) const {
    std::vector<std::string> out;
    for (const std::string& l : lines)
      if (l.find(text) != std::string::npos) out.push_back(l);
    return out;
  }
};

SessionOptions capturing(const std::shared_ptr<Captured>& into, LogLevel level = LogLevel::kInfo,
                         bool all_ranks = false) {
  SessionOptions options;
  options.log.level = level;
  options.log.all_ranks = all_ranks;
  options.log.sink = [into](LogLevel l, int rank, std::string_view line) {
    into->lines.emplace_back(line);
    into->levels.push_back(l);
    into->ranks.push_back(rank);
  };
  return options;
}

int world_rank() {
  int r = 0;
  MPI_Comm_rank(MPI_COMM_WORLD, &r);
  return r;
}

int world_size() {
  int n = 0;
  MPI_Comm_size(MPI_COMM_WORLD, &n);
  return n;
}

// The number before " bytes" in a line.
int64_t bytes_in(const std::string& line) {
  std::smatch m;
  if (!std::regex_search(line, m, std::regex(R"((\d+) bytes)"))) return -1;
  return std::stoll(m[1]);
}

// A graph with uneven shards and, at 3 and 4 ranks, ranks owning nothing of `small`: 7 f32 in
// blocks (28 bytes), 2 f64 in blocks (16 bytes), 3 replicated f32 (12 bytes).
struct Model {
  explicit Model(const Session& s)
      : uneven(Variable::create<float>(s, {7}, Layout::block(0))),
        small(Variable::create<double>(s, {2}, Layout::block(0))),
        replicated(Variable::create<float>(s, {3})) {}
  std::shared_ptr<Variable> uneven, small, replicated;
  Checkpoint::Children children() const {
    return {{"uneven", uneven}, {"small", small}, {"replicated", replicated}};
  }
};

// Saved bytes: each element once. Restored bytes: what every rank's variables received, so the
// replicated tensor counts once per rank.
constexpr int64_t kSavedBytes = 28 + 16 + 12;
int64_t restored_bytes() {
  return 28 + 16 + int64_t{12} * world_size();
}

class EnvGuard {
 public:
  explicit EnvGuard(const char* value) {
    if (value)
      setenv("CAIRN_LOG", value, 1);
    else
      unsetenv("CAIRN_LOG");
  }
  ~EnvGuard() { unsetenv("CAIRN_LOG"); }
};

TEST(Log, OneLinePerSaveAndRestoreOnRankZero) {
  EnvGuard env(nullptr);
  auto captured = std::make_shared<Captured>();
  Session s(MPI_COMM_WORLD, capturing(captured));
  const std::string dir = scratch_dir();
  Model model(s);
  Checkpoint ckpt(s, model.children());
  const std::string path = ckpt.save(dir + "/ckpt");
  ckpt.restore(path).assert_consumed();
  if (world_rank() != 0) {
    EXPECT_TRUE(captured->lines.empty()) << captured->lines.front();
    return;
  }
  ASSERT_EQ(captured->lines.size(), 2u);
  const std::string& saved = captured->lines[0];
  EXPECT_EQ(
      saved.rfind("saved '" + path + "' (counter 1, " + std::to_string(world_size()) + " ranks): ",
                  0),
      0u)
      << saved;
  EXPECT_EQ(bytes_in(saved), kSavedBytes) << saved;
  EXPECT_TRUE(std::regex_search(
      saved, std::regex(R"( in \d+\.\d{3} s, (\d+\.\d\d|-) GB/s, level: shared file$)")))
      << saved;
  const std::string& restored = captured->lines[1];
  EXPECT_EQ(
      restored.rfind("restored '" + path + "' (counter 1, saved on " +
                         std::to_string(world_size()) + " ranks, restored on " +
                         std::to_string(world_size()) + "): 3 of 3 tensors and 0 of 0 states, ",
                     0),
      0u)
      << restored;
  EXPECT_EQ(bytes_in(restored), restored_bytes()) << restored;
  EXPECT_NE(restored.find("GB/s, level: shared file"), std::string::npos) << restored;
  EXPECT_EQ(captured->levels[0], LogLevel::kInfo);
  EXPECT_EQ(captured->ranks[0], 0);
}

TEST(Log, AllRanksLogsOnEveryRank) {
  EnvGuard env(nullptr);
  auto captured = std::make_shared<Captured>();
  Session s(MPI_COMM_WORLD, capturing(captured, LogLevel::kInfo, /*all_ranks=*/true));
  Model model(s);
  Checkpoint ckpt(s, model.children());
  const std::string path = ckpt.save(scratch_dir() + "/ckpt");
  ckpt.restore(path).assert_consumed();
  ASSERT_EQ(captured->lines.size(), 2u);
  EXPECT_EQ(bytes_in(captured->lines[0]), kSavedBytes);
  EXPECT_EQ(bytes_in(captured->lines[1]), restored_bytes());
  for (int r : captured->ranks) EXPECT_EQ(r, world_rank());
}

TEST(Log, QuietLogsNothingAndEnvironmentOverridesTheOptions) {
  auto captured = std::make_shared<Captured>();
  {
    EnvGuard env(nullptr);
    Session s(MPI_COMM_WORLD, capturing(captured, LogLevel::kQuiet, true));
    Model model(s);
    Checkpoint ckpt(s, model.children());
    ckpt.restore(ckpt.save(scratch_dir() + "/ckpt")).assert_consumed();
  }
  EXPECT_TRUE(captured->lines.empty());
  {
    EnvGuard env("quiet");  // beats the options' info level
    Session s(MPI_COMM_WORLD, capturing(captured, LogLevel::kInfo, true));
    Model model(s);
    Checkpoint ckpt(s, model.children());
    ckpt.restore(ckpt.save(scratch_dir() + "/ckpt")).assert_consumed();
  }
  EXPECT_TRUE(captured->lines.empty());
  {
    EnvGuard env("info,all");  // beats the options' quiet level and rank 0 only
    Session s(MPI_COMM_WORLD, capturing(captured, LogLevel::kQuiet, false));
    Model model(s);
    Checkpoint ckpt(s, model.children());
    ckpt.restore(ckpt.save(scratch_dir() + "/ckpt")).assert_consumed();
  }
  EXPECT_EQ(captured->lines.size(), 2u);
}

// A restore that leaves saved values unused, with no status check and no expect_partial(), warns
// once its status is gone: through the sink at the warning level, and not at all when quiet.
TEST(Log, NeverRestoredIsAWarningThatQuietSilences) {
  struct Case {
    const char* env;
    LogLevel level;
    bool warns;
  };
  for (const Case& c :
       {Case{nullptr, LogLevel::kWarning, true}, Case{"quiet", LogLevel::kInfo, false},
        Case{nullptr, LogLevel::kQuiet, false}}) {
    EnvGuard env(c.env);
    auto captured = std::make_shared<Captured>();
    std::string path;
    {
      Session s(MPI_COMM_WORLD, capturing(captured, c.level));
      Model model(s);
      path = Checkpoint(s, model.children()).save(scratch_dir() + "/ckpt");
      captured->lines.clear();
      captured->levels.clear();
      Model partial(s);
      Checkpoint ckpt(s, {{"uneven", partial.uneven}});
      ckpt.restore(path);  // 'small' and 'replicated' are never restored, and nobody checks
    }
    const auto warnings = captured->with("never restored");
    if (!c.warns || world_rank() != 0) {
      EXPECT_TRUE(warnings.empty()) << warnings.front();
      continue;
    }
    ASSERT_EQ(warnings.size(), 1u);
    EXPECT_EQ(warnings[0].rfind("checkpoint '" + path +
                                    "': 2 saved objects or values were never restored (first: '",
                                0),
              0u)
        << warnings[0];
    EXPECT_NE(warnings[0].find("Call expect_partial()"), std::string::npos) << warnings[0];
    EXPECT_EQ(captured->lines.size(), 1u);  // the restore's info line is below the level
    EXPECT_EQ(captured->levels.back(), LogLevel::kWarning);
  }
}

TEST(Log, ParseLevel) {
  EXPECT_EQ(parse_log_level("quiet"), LogLevel::kQuiet);
  EXPECT_EQ(parse_log_level("warning"), LogLevel::kWarning);
  EXPECT_EQ(parse_log_level("info"), LogLevel::kInfo);
  EXPECT_EQ(parse_log_level("debug"), LogLevel::kDebug);
  EXPECT_FALSE(parse_log_level("verbose").has_value());
  EXPECT_EQ(log_level_name(LogLevel::kDebug), "debug");
}

TEST(Log, ManagerSaysWhatItDid) {
  EnvGuard env(nullptr);
  auto captured = std::make_shared<Captured>();
  Session s(MPI_COMM_WORLD, capturing(captured, LogLevel::kDebug));
  const std::string dir = scratch_dir();
  {
    Model model(s);
    Checkpoint ckpt(s, model.children());
    CheckpointManager mgr(ckpt, dir, {.max_to_keep = 2});
    EXPECT_FALSE(mgr.restore_or_initialize().path.has_value());
    for (int i = 0; i < 3; ++i) mgr.save();  // the third retires ckpt-1.h5
  }
  // A committed checkpoint the state file does not know (a crash between commit and state
  // update) and the leftover of a killed save: the next manager adopts the one, deletes the other.
  if (world_rank() == 0) {
    fs::copy_file(dir + "/ckpt-3.h5", dir + "/ckpt-4.h5");
    std::ofstream(dir + "/ckpt-5.h5.tmp-123-456") << "partial";
  }
  MPI_Barrier(MPI_COMM_WORLD);
  Model model(s);
  Checkpoint ckpt(s, model.children());
  CheckpointManager mgr(ckpt, dir, {.max_to_keep = 2});
  // Then the adopted one is damaged: restore_or_initialize falls back past it.
  if (world_rank() == 0) fs::resize_file(dir + "/ckpt-4.h5", fs::file_size(dir + "/ckpt-4.h5") / 2);
  MPI_Barrier(MPI_COMM_WORLD);
  const RestoreOutcome outcome = mgr.restore_or_initialize();
  ASSERT_TRUE(outcome.path.has_value());
  EXPECT_EQ(*outcome.path, dir + "/ckpt-3.h5");
  if (world_rank() != 0) {
    EXPECT_TRUE(captured->lines.empty());
    return;
  }
  for (const std::string& l : captured->lines) std::printf("  log: %s\n", l.c_str());
  EXPECT_EQ(
      captured->with("restore_or_initialize: no checkpoint in '" + dir + "'; initialized").size(),
      1u);
  EXPECT_EQ(captured->with("saved '").size(), 3u);
  EXPECT_EQ(captured->with("deleted '" + dir + "/ckpt-1.h5' (max_to_keep 2)").size(), 1u);
  EXPECT_EQ(captured->with("deleted '").size(), 2u);  // and the leftover
  EXPECT_EQ(
      captured
          ->with(dir + ": deleted 'ckpt-5.h5.tmp-123-456', left by a save that did not complete")
          .size(),
      1u);
  EXPECT_EQ(captured->with(dir + ": adopted 'ckpt-4.h5': committed").size(), 1u);
  EXPECT_EQ(captured->with("skipped checkpoint '" + dir + "/ckpt-4.h5': ").size(), 1u);
  EXPECT_EQ(captured->with("restored '" + dir + "/ckpt-3.h5' (counter 3,").size(), 1u);
  EXPECT_EQ(captured
                ->with("restore_or_initialize: resumed from '" + dir +
                       "/ckpt-3.h5' (the newest checkpoint that restores, after skipping 1)")
                .size(),
            1u);
  for (std::size_t i = 0; i < captured->lines.size(); ++i) {
    if (captured->lines[i].starts_with("skipped checkpoint")) {
      EXPECT_EQ(captured->levels[i], LogLevel::kWarning);
    }
  }
}

}  // namespace
}  // namespace cairn
