// SPDX-License-Identifier: Apache-2.0
// The log lines a program receives through LogOptions::sink: what each says (path, counter, bytes,
// GB/s, level), on which ranks, and at which levels, with CAIRN_LOG overriding the options.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <regex>
#include <sstream>
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

// CAIRN_LOG is read once, when the session is created: setting or unsetting it afterwards changes
// nothing for that session (log lines also come from the asynchronous saver's thread, where a
// getenv would race the program's setenv).
TEST(Log, EnvironmentIsReadWhenTheSessionIsCreated) {
  auto captured = std::make_shared<Captured>();
  {
    EnvGuard env("quiet");
    Session s(MPI_COMM_WORLD, capturing(captured, LogLevel::kInfo, true));
    unsetenv("CAIRN_LOG");
    EXPECT_EQ(s.options().log.level, LogLevel::kQuiet);
    Model model(s);
    Checkpoint ckpt(s, model.children());
    ckpt.restore(ckpt.save(scratch_dir() + "/ckpt")).assert_consumed();
  }
  EXPECT_TRUE(captured->lines.empty()) << captured->lines.front();
  {
    EnvGuard env(nullptr);
    Session s(MPI_COMM_WORLD, capturing(captured, LogLevel::kInfo, true));
    setenv("CAIRN_LOG", "quiet", 1);
    Model model(s);
    Checkpoint ckpt(s, model.children());
    ckpt.save_async(scratch_dir() + "/ckpt");
    ckpt.wait();
    ckpt.restore(ckpt.save(scratch_dir() + "/ckpt")).assert_consumed();
  }
  EXPECT_EQ(captured->lines.size(), 3u);  // two saves and a restore, on every rank
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

// Sets CAIRN_TRACE for its lifetime.
class TraceEnv {
 public:
  explicit TraceEnv(const char* value) { setenv("CAIRN_TRACE", value, 1); }
  ~TraceEnv() { unsetenv("CAIRN_TRACE"); }
};

// What this process writes to its standard error (file descriptor 2) while it lives.
class StderrCapture {
 public:
  explicit StderrCapture(std::string file) : file_(std::move(file)) {
    std::fflush(stderr);
    saved_ = dup(2);
    const int fd = open(file_.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (saved_ < 0 || fd < 0 || dup2(fd, 2) < 0) std::abort();
    close(fd);
  }
  ~StderrCapture() { stop(); }
  // Restores standard error and returns what was written meanwhile.
  std::string stop() {
    if (saved_ >= 0) {
      std::fflush(stderr);
      dup2(saved_, 2);
      close(saved_);
      saved_ = -1;
    }
    std::ifstream in(file_);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }

 private:
  std::string file_;
  int saved_ = -1;
};

// Lines of `text` that start with `prefix`.
std::vector<std::string> lines_starting(const std::string& text, const std::string& prefix) {
  std::vector<std::string> out;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);)
    if (line.starts_with(prefix)) out.push_back(line);
  return out;
}

// The bytes `lines` report for `phase`.
int64_t phase_bytes(const std::vector<std::string>& lines, const std::string& phase) {
  int64_t bytes = 0;
  for (const std::string& l : lines)
    if (l.find("': " + phase + " ") != std::string::npos)
      bytes += std::max<int64_t>(bytes_in(l), 0);
  return bytes;
}

// Collective. The bytes every rank's lines report for `phase`, summed over the job.
int64_t job_bytes(const std::vector<std::string>& lines, const std::string& phase) {
  const int64_t mine = phase_bytes(lines, phase);
  int64_t sum = 0;
  MPI_Allreduce(&mine, &sum, 1, MPI_INT64_T, MPI_SUM, MPI_COMM_WORLD);
  return sum;
}

// CAIRN_TRACE=all: every rank prints one line per phase of a save and of a restore, each naming
// the checkpoint's path; the data phases carry the bytes this rank moved, which add up over the
// job to what was saved and restored. CAIRN_TRACE=1: rank 0 alone.
TEST(Trace, LinesCarryThePathAndTheBytes) {
  EnvGuard env("quiet");  // the log lines are not under test here
  const std::string dir = scratch_dir();
  Session s(MPI_COMM_WORLD);
  Model model(s);
  Checkpoint ckpt(s, model.children());
  const std::string prefix = "cairn trace [rank " + std::to_string(world_rank()) + "] ";
  int64_t written_here = -1;  // by this rank, from its own trace
  {
    TraceEnv trace("all");
    StderrCapture capture(dir + "/stderr-all-" + std::to_string(world_rank()));
    const std::string path = ckpt.save(dir + "/ckpt");
    ckpt.restore(path).assert_consumed();
    const std::string text = capture.stop();
    const auto saves = lines_starting(text, prefix + "save '" + path + "': ");
    const auto restores = lines_starting(text, prefix + "restore '" + path + "': ");
    EXPECT_GE(saves.size(), 5u) << text;
    EXPECT_GE(restores.size(), 3u) << text;
    EXPECT_EQ(lines_starting(text, "cairn trace").size(), saves.size() + restores.size()) << text;
    for (const auto& l : saves)
      EXPECT_TRUE(std::regex_search(l, std::regex(R"(: [a-z ]+ \d+\.\d{4} s(, \d+ bytes)?$)")))
          << l;
    written_here = phase_bytes(saves, "write data");
    EXPECT_EQ(job_bytes(saves, "write data"), kSavedBytes) << text;
    EXPECT_EQ(job_bytes(restores, "read and verify"), restored_bytes()) << text;
  }
  {
    TraceEnv trace("1");
    StderrCapture capture(dir + "/stderr-1-" + std::to_string(world_rank()));
    const std::string path = ckpt.save(dir + "/ckpt");
    ckpt.restore(path).assert_consumed();
    const std::string text = capture.stop();
    if (world_rank() == 0) {
      const auto saves = lines_starting(text, "cairn trace [rank 0] save '" + path + "': ");
      EXPECT_GE(saves.size(), 5u) << text;
      EXPECT_EQ(phase_bytes(saves, "write data"), written_here) << text;  // the same plan
      EXPECT_GE(lines_starting(text, "cairn trace [rank 0] restore '" + path + "': ").size(), 3u)
          << text;
    } else {
      EXPECT_EQ(text, "");
    }
  }
}

// A path is user data: a newline or another control character in it is escaped in log and trace
// lines ("\n", "\x01"), as error texts escape it, so that one save is still one line.
TEST(Trace, ControlCharactersInPathsAreEscapedInLogAndTraceLines) {
  EnvGuard env(nullptr);
  TraceEnv trace("all");
  auto captured = std::make_shared<Captured>();
  Session s(MPI_COMM_WORLD, capturing(captured, LogLevel::kInfo, /*all_ranks=*/true));
  const std::string dir = scratch_dir();
  const std::string odd = dir + "/line\nbreak\x01";
  const std::string escaped = dir + "/line\\nbreak\\x01";
  if (world_rank() == 0) fs::create_directory(odd);
  MPI_Barrier(MPI_COMM_WORLD);
  Model model(s);
  Checkpoint ckpt(s, model.children());
  StderrCapture capture(dir + "/stderr-" + std::to_string(world_rank()));
  const std::string path = ckpt.save(odd + "/ckpt");
  ckpt.restore(path).assert_consumed();
  const std::string text = capture.stop();
  ASSERT_EQ(path, odd + "/ckpt-1.h5");
  const std::string shown = escaped + "/ckpt-1.h5";
  ASSERT_EQ(captured->lines.size(), 2u);
  EXPECT_TRUE(captured->lines[0].starts_with("saved '" + shown + "' (counter 1, "))
      << captured->lines[0];
  EXPECT_TRUE(captured->lines[1].starts_with("restored '" + shown + "' (counter 1, "))
      << captured->lines[1];
  const std::string prefix = "cairn trace [rank " + std::to_string(world_rank()) + "] ";
  EXPECT_GE(lines_starting(text, prefix + "save '" + shown + "': ").size(), 5u) << text;
  EXPECT_GE(lines_starting(text, prefix + "restore '" + shown + "': ").size(), 3u) << text;
  EXPECT_EQ(text.find(odd), std::string::npos) << "a raw path in the trace:\n" << text;
  // Every line of the trace is a whole trace line: the newline did not split one.
  for (const std::string& l : lines_starting(text, ""))
    EXPECT_TRUE(l.starts_with("cairn trace [rank ")) << l;
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
  // A file of its naming that is no checkpoint is ignored (a warning), and a recorded checkpoint
  // deleted behind its back is dropped from the state file.
  if (world_rank() == 0) {
    fs::copy_file(dir + "/ckpt-3.h5", dir + "/ckpt-4.h5");
    std::ofstream(dir + "/ckpt-5.h5.tmp-123-456") << "partial";
    std::ofstream(dir + "/ckpt-6.h5") << "not a checkpoint";
    fs::remove(dir + "/ckpt-2.h5");
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
  EXPECT_EQ(captured->with(dir + ": ignored 'ckpt-6.h5': ").size(), 1u);
  EXPECT_EQ(captured->with(dir + ": dropped 'ckpt-2.h5' from the state file").size(), 1u);
  EXPECT_EQ(captured->with("skipped checkpoint '" + dir + "/ckpt-4.h5': ").size(), 1u);
  EXPECT_EQ(captured->with("restored '" + dir + "/ckpt-3.h5' (counter 3,").size(), 1u);
  EXPECT_EQ(captured
                ->with("restore_or_initialize: resumed from '" + dir +
                       "/ckpt-3.h5' (the newest checkpoint that restores, after skipping 1)")
                .size(),
            1u);
  // Each line at its level: what leaves something for a person to look at is a warning.
  std::size_t recovery_notes = 0;
  for (std::size_t i = 0; i < captured->lines.size(); ++i) {
    const std::string& l = captured->lines[i];
    if (l.starts_with("skipped checkpoint") || l.starts_with(dir + ": ignored ")) {
      EXPECT_EQ(captured->levels[i], LogLevel::kWarning) << l;
    }
    if (l.starts_with(dir + ": adopted ") || l.starts_with(dir + ": dropped ") ||
        l.starts_with(dir + ": deleted ")) {
      EXPECT_EQ(captured->levels[i], LogLevel::kInfo) << l;
    }
    recovery_notes += l.starts_with(dir + ": ") ? 1 : 0;
  }
  EXPECT_EQ(recovery_notes, 4u);
  EXPECT_EQ(mgr.recovery_notes().size(), 4u);
}

}  // namespace
}  // namespace cairn
