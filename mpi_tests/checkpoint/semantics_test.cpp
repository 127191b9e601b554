// SPDX-License-Identifier: Apache-2.0
// Restore semantics as tf.train.Checkpoint has them (issue 15): the newest restore() call wins
// whatever the order of attaching, deferred slot values survive a newer restore that lacks them,
// dropped per-rank values are reported, deferred restoration survives the file's deletion, two
// restores of one checkpoint agree, and inconsistent references are named as such.
#include <dirent.h>
#include <mpi.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <string_view>

#include "cairn/cairn.hpp"
#include "cairn/state/boost_state.hpp"
#include "damage.hpp"
#include "support/test_support.hpp"

namespace cairn {
namespace {

using testing::expect_one_ranks_fault_everywhere;
using testing::fill;
using testing::global_mismatches;
using testing::ScopedEnv;
using testing::scratch_dir;
using testing::session;

// Collective. Runs `check` and returns the text of the cairn::Error it throws ("" if none).
std::string failure_of(const std::function<void()>& check) {
  try {
    check();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

std::shared_ptr<Variable> make_var(int64_t id) {
  auto v = Variable::create<double>(session(), {7, 3}, Layout::block(0));  // uneven shards
  fill(*v, id);
  return v;
}

// A module "dep" holding "var", saved as the root's child "dep".
std::string save_dep(const std::string& path, int64_t id) {
  auto dep = std::make_shared<Module>();
  dep->track("var", make_var(id));
  return Checkpoint(session(), {{"dep", dep}}).write(path);
}

TEST(Semantics, NewestRestoreCallWinsWhateverTheOrderOfAttaching) {
  const std::string dir = scratch_dir();
  const std::string a = save_dep(dir + "/a.h5", 12);
  const std::string b = save_dep(dir + "/b.h5", 13);
  for (const bool root1_first : {true, false}) {
    Checkpoint root1(session()), root2(session());
    auto sb = root2.restore(b);  // older call
    auto sa = root1.restore(a);  // newer call: its value must win
    auto dep = std::make_shared<Module>();
    auto var = Variable::create<double>(session(), {7, 3}, Layout::block(1));
    dep->track("var", var);
    if (root1_first) {
      root1.root().track("dep", dep);
      root2.root().track("dep", dep);
    } else {
      root2.root().track("dep", dep);
      root1.root().track("dep", dep);
    }
    EXPECT_EQ(global_mismatches(*var, 12), 0) << "root1 attached first: " << root1_first;
    // Both restores matched the object; B's value was superseded by A's newer call, not lost.
    sa.assert_consumed();
    sb.assert_consumed();
  }
}

TEST(Semantics, DeferredSlotValuesSurviveANewerRestoreThatLacksThem) {
  const std::string dir = scratch_dir();
  std::string p1, p2;
  {
    p1 = Checkpoint(session(), {{"var", make_var(12)}}).write(dir + "/p1.h5");
    auto var = make_var(13);
    auto opt = std::make_shared<Adam>(session(), Adam::Options{});
    fill(*opt->add_slot(var, "m"), 14);
    fill(*opt->add_slot(var, "v"), 15);
    opt->begin_step();
    p2 = Checkpoint(session(), {{"var", var}, {"opt", opt}}).write(dir + "/p2.h5");
  }
  Checkpoint ckpt(session());
  auto s2 = ckpt.restore(p2);
  auto s1 = ckpt.restore(p1);
  auto var = Variable::create<double>(session(), {7, 3}, Layout::block(0));
  ckpt.root().track("var", var);
  EXPECT_EQ(global_mismatches(*var, 12), 0) << "p1 is the newer restore";
  auto opt = std::make_shared<Adam>(session(), Adam::Options{});
  ckpt.root().track("opt", opt);
  EXPECT_EQ(opt->iterations(), 1);
  // As apply() does at the first step: the slots appear after every restore.
  auto m = opt->add_slot(var, "m");
  auto v = opt->add_slot(var, "v");
  EXPECT_EQ(global_mismatches(*m, 14), 0) << "the newest restore holding a value for m wins";
  EXPECT_EQ(global_mismatches(*v, 15), 0);
  s2.assert_consumed();
  // P1 holds no optimizer: to it, the optimizer and its slots are live objects it lacks.
  const std::string text = failure_of([&] { s1.assert_consumed(); });
  EXPECT_NE(text.find("live object not in the checkpoint: 'opt'"), std::string::npos) << text;
  EXPECT_EQ(text.find("checkpoint object not matched"), std::string::npos) << text;
}

TEST(Semantics, RestoringOneCheckpointTwiceGivesEachStatusOneVerdict) {
  const std::string dir = scratch_dir();
  const std::string path = save_dep(dir + "/twice.h5", 21);
  Checkpoint ckpt(session());
  auto first = ckpt.restore(path);
  auto second = ckpt.restore(path);
  auto dep = std::make_shared<Module>();
  auto var = Variable::create<double>(session(), {7, 3}, Layout::replicated());
  dep->track("var", var);
  ckpt.root().track("dep", dep);
  EXPECT_EQ(global_mismatches(*var, 21), 0);
  EXPECT_EQ(failure_of([&] { first.assert_consumed(); }), "");
  EXPECT_EQ(failure_of([&] { second.assert_consumed(); }), "");
}

TEST(Semantics, ASharedObjectReachedAsTwoLiveObjectsIsAnInconsistentReference) {
  const std::string dir = scratch_dir();
  std::string path;
  {
    auto shared = make_var(31);
    path = Checkpoint(session(), {{"a", shared}, {"b", shared}}).write(dir + "/shared.h5");
  }
  auto first = Variable::create<double>(session(), {7, 3}, Layout::block(0));
  auto second = Variable::create<double>(session(), {7, 3}, Layout::block(0));
  Checkpoint ckpt(session(), {{"a", first}, {"b", second}});
  auto status = ckpt.restore(path);
  EXPECT_EQ(global_mismatches(*first, 31), 0);
  for (const auto& check : std::vector<std::function<void()>>{
           [&] { status.assert_consumed(); }, [&] { status.assert_existing_objects_matched(); }}) {
    const std::string text = failure_of(check);
    EXPECT_NE(text.find("inconsistent references: 'a' and 'b'"), std::string::npos) << text;
    EXPECT_EQ(text.find("live object not in the checkpoint"), std::string::npos) << text;
  }
  status.expect_partial();
}

// A loader position that merges on rescale: the job-wide sum, on every rank.
struct Position {
  int64_t consumed = 0;
  template <class A>
  void serialize(A& ar, unsigned) {
    ar& consumed;
  }
};
class MergedPosition : public State<Position> {
 public:
  MergedPosition() : State<Position>(StateScope::kPerRank) {}
  bool load_rescaled(const std::vector<std::string>& saved, int) override {
    int64_t total = 0;
    for (const std::string& bytes : saved) {
      load_bytes(bytes);
      total += value().consumed;
    }
    value().consumed = total;
    return true;
  }
};

// The first `n` ranks of the world, or MPI_COMM_NULL on the others. Collective over the world.
MPI_Comm first_ranks(int n) {
  MPI_Comm comm = MPI_COMM_NULL;
  MPI_Comm_split(MPI_COMM_WORLD, session().rank() < n ? 0 : MPI_UNDEFINED, session().rank(), &comm);
  return comm;
}

TEST(Semantics, PerRankStateOfARankThatNoLongerExistsIsUnconsumedUnlessMerged) {
  const std::string dir = scratch_dir();
  const int world = session().size();
  const std::string path = dir + "/state.h5";
  {
    auto pos =
        std::make_shared<State<Position>>(StateScope::kPerRank, Position{100 + session().rank()});
    auto merged = std::make_shared<MergedPosition>();
    merged->value().consumed = 100 + session().rank();
    Checkpoint(session(), {{"pos", pos}, {"merged", merged}}).write(path);
  }
  std::vector<int> smaller;  // fewer ranks than saved: one less, and one
  if (world > 1) smaller.push_back(world - 1);
  if (world > 2) smaller.push_back(1);
  for (const int restorers : smaller) {
    MPI_Comm comm = first_ranks(restorers);
    if (comm != MPI_COMM_NULL) {
      {
        const Session s(comm);
        auto pos = std::make_shared<State<Position>>(StateScope::kPerRank);
        auto merged = std::make_shared<MergedPosition>();
        auto status = Checkpoint(s, {{"pos", pos}, {"merged", merged}}).restore(path);
        EXPECT_EQ(pos->value().consumed, 100 + s.rank());
        EXPECT_EQ(merged->value().consumed, 100 * world + world * (world - 1) / 2);
        const std::string text = failure_of([&] { status.assert_consumed(); });
        // Every saved rank the job lacks is named, on one line for all ranks; the merged state
        // consumed every value and is not mentioned.
        std::string ranks;
        for (int r = restorers; r < world; ++r)
          ranks += (ranks.empty() ? "" : ",") + std::to_string(r);
        const std::string want =
            "checkpoint value not restored: 'pos/.ATTRIBUTES/STATE' of saved rank" +
            std::string(world - restorers > 1 ? "s " : " ") + ranks + " of " +
            std::to_string(world);
        EXPECT_NE(text.find(want), std::string::npos) << text;
        EXPECT_EQ(text.find("merged"), std::string::npos) << text;
        EXPECT_EQ(failure_of([&] { status.assert_existing_objects_matched(); }).empty(), false);
        status.expect_partial();  // silences the report at the end of the restore's life
      }
      MPI_Comm_free(&comm);
    }
    MPI_Barrier(MPI_COMM_WORLD);
  }
  // At the saved size every value has its rank.
  auto pos = std::make_shared<State<Position>>(StateScope::kPerRank);
  auto merged = std::make_shared<MergedPosition>();
  Checkpoint(session(), {{"pos", pos}, {"merged", merged}}).restore(path).assert_consumed();
  EXPECT_EQ(pos->value().consumed, 100 + session().rank());
}

int open_descriptors() {
  int count = 0;
  if (DIR* d = ::opendir("/proc/self/fd")) {
    while (::readdir(d)) ++count;
    ::closedir(d);
  }
  return count;
}

TEST(Semantics, DeferredRestorationOutlivesTheDeletionOfTheRestoredFile) {
  const std::string dir = scratch_dir();
  {
    auto w = make_var(40);
    auto opt = std::make_shared<Adam>(session(), Adam::Options{});
    fill(*opt->add_slot(w, "m"), 41);
    fill(*opt->add_slot(w, "v"), 42);
    Checkpoint ckpt(session(), {{"w", w}, {"opt", opt}});
    CheckpointManager(ckpt, dir, {.max_to_keep = 1}).save();
  }
  auto w = Variable::create<double>(session(), {7, 3}, Layout::block(0));
  auto opt = std::make_shared<Adam>(session(), Adam::Options{});
  Checkpoint ckpt(session(), {{"w", w}, {"opt", opt}});
  CheckpointManager manager(ckpt, dir, {.max_to_keep = 1});
  RestoreOutcome outcome = manager.restore_or_initialize();
  ASSERT_TRUE(outcome.path.has_value());
  const std::string restored = *outcome.path;
  EXPECT_EQ(global_mismatches(*w, 40), 0);
  manager.save();  // an early save: retention deletes the file the slots are still pending in
  EXPECT_FALSE(std::filesystem::exists(restored));
  // The first training step creates the slots, which are restored from the deleted file.
  opt->begin_step();
  const std::vector<double> gradient(static_cast<std::size_t>(w->local_elements()), 0.0);
  opt->apply(w, gradient);
  auto m = opt->get_slot(*w, "m");
  ASSERT_NE(m, nullptr);
  // Adam with a zero gradient scales the restored m by beta1 = 0.9 (a zero m would stay zero).
  const auto reference = make_var(41);
  int64_t wrong = 0;
  for (std::size_t b = 0; b < m->local_boxes().size(); ++b) {
    const auto* got = reinterpret_cast<const double*>(m->box_bytes(b).data());
    const auto* ref = reinterpret_cast<const double*>(reference->box_bytes(b).data());
    for (std::size_t i = 0; i < m->box_bytes(b).size() / sizeof(double); ++i)
      if (std::abs(got[i] - 0.9 * ref[i]) > 1e-12 * std::abs(ref[i]) || ref[i] == 0) ++wrong;
  }
  EXPECT_EQ(session().comm().allreduce_sum(wrong), 0);
  outcome.status->assert_consumed();
}

TEST(Semantics, TheRestoredFileIsHeldOnlyWhileValuesArePending) {
  const std::string dir = scratch_dir();
  const std::string path = save_dep(dir + "/held.h5", 50);
  const int before = open_descriptors();
  {
    Checkpoint ckpt(session());
    auto status = ckpt.restore(path);  // "dep" does not exist yet: pending
    EXPECT_EQ(open_descriptors(), before + 1);
    auto dep = std::make_shared<Module>();
    auto var = Variable::create<double>(session(), {7, 3}, Layout::block(0));
    dep->track("var", var);
    ckpt.root().track("dep", dep);  // the last pending value: the file is let go
    EXPECT_EQ(global_mismatches(*var, 50), 0);
    EXPECT_EQ(open_descriptors(), before);
    status.assert_consumed();
  }
  {
    auto dep = std::make_shared<Module>();
    dep->track("var", Variable::create<double>(session(), {7, 3}, Layout::block(0)));
    Checkpoint ckpt(session(), {{"dep", dep}});
    auto status = ckpt.restore(path);  // nothing pending: nothing held
    EXPECT_EQ(open_descriptors(), before);
    status.assert_consumed();
  }
}

TEST(Semantics, ReattachingARestoredObjectKeepsItsLiveValue) {
  const std::string dir = scratch_dir();
  std::string path;
  {
    auto dep = std::make_shared<Module>();
    auto var = make_var(80);
    dep->track("var", var);
    auto opt = std::make_shared<Adam>(session(), Adam::Options{});
    fill(*opt->add_slot(var, "m"), 81);
    path = Checkpoint(session(), {{"dep", dep}, {"opt", opt}}).write(dir + "/reattach.h5");
  }
  Checkpoint ckpt(session());
  auto status = ckpt.restore(path);
  auto dep = std::make_shared<Module>();
  auto var = Variable::create<double>(session(), {7, 3}, Layout::block(1));
  dep->track("var", var);
  ckpt.root().track("dep", dep);
  EXPECT_EQ(global_mismatches(*var, 80), 0);
  fill(*var, 82);  // training since the restore
  // Tracked again while the optimizer's values are still pending: a value is restored once.
  ckpt.root().track("dep", dep);
  EXPECT_EQ(global_mismatches(*var, 82), 0);
  dep->track("var", var);
  EXPECT_EQ(global_mismatches(*var, 82), 0);
  // A replacement is a new object: it gets the saved value.
  dep.reset();
  var.reset();
  auto dep2 = std::make_shared<Module>();
  auto var2 = Variable::create<double>(session(), {7, 3}, Layout::block(0));
  dep2->track("var", var2);
  ckpt.root().track("dep", dep2);
  EXPECT_EQ(global_mismatches(*var2, 80), 0);
  status.expect_partial();
}

TEST(Semantics, ASharedObjectReachedByANewPathKeepsItsLiveValue) {
  const std::string dir = scratch_dir();
  std::string path;
  {
    auto dep = std::make_shared<Module>();
    dep->track("var", make_var(90));
    path = Checkpoint(session(), {{"a", dep}, {"b", dep}, {"other", make_var(91)}})
               .write(dir + "/paths.h5");
  }
  Checkpoint ckpt(session());
  auto status = ckpt.restore(path);  // "other" is never created: the restore stays pending
  auto dep = std::make_shared<Module>();
  auto var = Variable::create<double>(session(), {7, 3}, Layout::block(0));
  dep->track("var", var);
  ckpt.root().track("a", dep);
  EXPECT_EQ(global_mismatches(*var, 90), 0);
  fill(*var, 92);
  ckpt.root().track("b", dep);
  EXPECT_EQ(global_mismatches(*var, 92), 0);
  status.expect_partial();
}

// This process's descriptors open on checkpoint files (deleted ones included).
int open_checkpoint_files() {
  int count = 0;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
    std::error_code ec;
    const std::string target = std::filesystem::read_symlink(entry.path(), ec).string();
    if (!ec && target.find(".h5") != std::string::npos) ++count;
  }
  return count;
}

TEST(Semantics, AnEvaluationLoopOverCheckpointsWithSlotsItNeverCreatesHoldsBoundedResources) {
  const std::string dir = scratch_dir();
  auto w = make_var(0);
  auto opt = std::make_shared<Adam>(session(), Adam::Options{});
  auto m = opt->add_slot(w, "m");
  Checkpoint trainer(session(), {{"w", w}, {"opt", opt}});
  CheckpointManager manager(trainer, dir, {.max_to_keep = 2});
  // The evaluator has the weights only: the optimizer and its slots stay pending in every read.
  auto ew = Variable::create<double>(session(), {7, 3}, Layout::block(1));
  Checkpoint evaluator(session(), {{"w", ew}});
  constexpr int kReads = 50;
  int most_files = 0;
  std::size_t most_bindings = 0;
  for (int i = 0; i < kReads; ++i) {
    fill(*w, 100 + i);
    fill(*m, 300 + i);
    const std::string path = *manager.save();
    evaluator.read(path).expect_partial();
    EXPECT_EQ(global_mismatches(*ew, 100 + i), 0) << "read " << i;
    most_files = std::max(most_files, open_checkpoint_files());
    most_bindings = std::max(most_bindings, evaluator.root().restore_bindings().size());
  }
  // Each superseded read let go of its file, its manifest and its binding on the root (which
  // is what keeps an unreferenced read alive).
  EXPECT_LE(session().comm().allreduce_max(most_files), 2);
  EXPECT_EQ(most_bindings, 1u);
  // The newest read still restores what is created late.
  auto eopt = std::make_shared<Adam>(session(), Adam::Options{});
  evaluator.root().track("opt", eopt);
  auto em = eopt->add_slot(ew, "m");
  EXPECT_EQ(global_mismatches(*em, 300 + kReads - 1), 0);
  EXPECT_EQ(open_checkpoint_files(), 0);
}

TEST(Semantics, ANewerRestoreOfTheSameRootSupersedesOnlyWhatItProvides) {
  const std::string dir = scratch_dir();
  std::string older_path;
  {
    auto dep = std::make_shared<Module>();
    dep->track("var", make_var(120));
    older_path =
        Checkpoint(session(), {{"dep", dep}, {"only_old", make_var(121)}}).write(dir + "/older.h5");
  }
  const std::string newer_path = save_dep(dir + "/newer.h5", 122);
  Checkpoint ckpt(session());
  auto older = ckpt.restore(older_path);
  auto newer = ckpt.restore(newer_path);
  // "dep" and "dep/var" are superseded in the older restore; "only_old" is still pending there.
  EXPECT_EQ(open_checkpoint_files(), 2);
  auto dep = std::make_shared<Module>();
  auto var = Variable::create<double>(session(), {7, 3}, Layout::block(1));
  dep->track("var", var);
  ckpt.root().track("dep", dep);
  EXPECT_EQ(global_mismatches(*var, 122), 0);
  EXPECT_EQ(open_checkpoint_files(), 1);  // the newer restore has nothing left pending
  auto only_old = Variable::create<double>(session(), {7, 3}, Layout::block(0));
  ckpt.root().track("only_old", only_old);
  EXPECT_EQ(global_mismatches(*only_old, 121), 0);
  EXPECT_EQ(open_checkpoint_files(), 0);
  older.assert_consumed();
  // To the newer checkpoint, "only_old" is a live object it lacks.
  const std::string text = failure_of([&] { newer.assert_consumed(); });
  EXPECT_NE(text.find("1 problem(s)"), std::string::npos) << text;
  EXPECT_NE(text.find("live object not in the checkpoint: 'only_old'"), std::string::npos) << text;
  newer.expect_partial();
}

TEST(Semantics, AFailingCloseOfTheRestoredFileOnOneRankFailsTheRestoreEverywhere) {
  const std::string dir = scratch_dir();
  const int failing = session().size() - 1;
  const std::string path = Checkpoint(session(), {{"var", make_var(110)}, {"later", make_var(111)}})
                               .write(dir + "/close.h5");
  auto var = Variable::create<double>(session(), {7, 3}, Layout::block(0));
  Checkpoint ckpt(session(), {{"var", var}});
  {
    const ScopedEnv fault("CAIRN_FAULT_THROW", "restore_close:" + std::to_string(failing));
    try {
      ckpt.restore(path);
      ADD_FAILURE() << "expected the restore to fail";
    } catch (const Error& e) {
      EXPECT_NE(e.message().find("a foreign exception at 'restore_close'"), std::string::npos)
          << e.what();
      EXPECT_EQ(e.context().rank, failing);
      EXPECT_EQ(e.failed_ranks(), 1);
    }
  }
  // The failed restore was abandoned: it restores nothing attached later.
  auto later = Variable::create<double>(session(), {7, 3}, Layout::block(0));
  ckpt.root().track("later", later);
  EXPECT_NE(global_mismatches(*later, 111), 0);
  // Every rank left the failed restore in step.
  ckpt.restore(path).assert_consumed();
  EXPECT_EQ(global_mismatches(*later, 111), 0);
}

// A shared file one rank cannot see (a stale directory cache on a network file system, say):
// that rank's check must not leave the others inside HDF5's collective open.
TEST(Semantics, AFileOneRankCannotSeeIsTheSameErrorEverywhere) {
  const std::string dir = scratch_dir();
  const std::string path = Checkpoint(session(), {{"var", make_var(62)}}).write(dir + "/seen.h5");
  const int blind = session().size() - 1;
  const std::string mine = session().rank() == blind ? dir + "/unseen.h5" : path;
  auto var = Variable::create<double>(session(), {7, 3}, Layout::block(0));
  try {
    Checkpoint(session(), {{"var", var}}).restore(mine);
    ADD_FAILURE() << "expected the restore to fail";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kNotFound) << e.what();
    EXPECT_EQ(e.context().rank, blind);
    EXPECT_EQ(e.context().checkpoint, dir + "/unseen.h5");
    // Agreed by the reader, then by the restore: still the one rank that failed.
    EXPECT_EQ(e.failed_ranks(), 1) << e.what();
    EXPECT_EQ(std::string(e.what()).find("ranks failed"), std::string::npos) << e.what();
  }
  // Every rank left the failed restore in step.
  Checkpoint(session(), {{"var", var}}).restore(path).assert_consumed();
  EXPECT_EQ(global_mismatches(*var, 62), 0);
}

// A special file at the path, on the refusing rank only, in a short directory of its own (a
// socket's name must fit in sun_path, 108 bytes, which the scratch directory can exceed); removed
// with the object, and named the same on every rank.
class SpecialFileOnOneRank {
 public:
  enum class Kind { kSocket, kFifo };
  SpecialFileOnOneRank(Kind kind, int owner) : owner_(session().rank() == owner) {
    char name[64] = {};
    if (owner_) {
      char pattern[] = "/tmp/cairn-special-XXXXXX";
      if (::mkdtemp(pattern)) std::snprintf(name, sizeof name, "%s", pattern);
    }
    MPI_Bcast(name, sizeof name, MPI_CHAR, owner, session().comm().get());
    dir_ = name;
    path_ = dir_ + "/file.h5";
    if (!owner_ || dir_.empty()) return;
    if (kind == Kind::kFifo) {
      EXPECT_EQ(::mkfifo(path_.c_str(), 0600), 0) << std::strerror(errno);
      return;
    }
    listener_ = ::socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un address{};
    address.sun_family = AF_UNIX;
    std::strncpy(address.sun_path, path_.c_str(), sizeof address.sun_path - 1);
    // No ASSERT: a rank that left the test here would leave the others in its restore.
    EXPECT_EQ(::bind(listener_, reinterpret_cast<const sockaddr*>(&address), sizeof address), 0)
        << std::strerror(errno);
  }
  ~SpecialFileOnOneRank() {
    if (listener_ >= 0) ::close(listener_);
    if (owner_ && !dir_.empty()) {
      ::unlink(path_.c_str());
      ::rmdir(dir_.c_str());
    }
  }
  SpecialFileOnOneRank(const SpecialFileOnOneRank&) = delete;
  SpecialFileOnOneRank& operator=(const SpecialFileOnOneRank&) = delete;
  const std::string& path() const { return path_; }

 private:
  bool owner_;
  std::string dir_, path_;
  int listener_ = -1;
};

// A path one rank can see but not open for reading (a socket, which open(2) refuses even to root;
// on a cluster, a node whose mount or permissions differ), or can open but is no file (a FIFO,
// which MPI-IO's open would wait on): that rank's refusal must not leave the others inside HDF5's
// collective open.
TEST(Semantics, AFileOneRankCannotOpenIsTheSameErrorEverywhere) {
  const std::string dir = scratch_dir();
  const std::string path = Checkpoint(session(), {{"var", make_var(63)}}).write(dir + "/open.h5");
  const int refused = session().size() - 1;
  using Kind = SpecialFileOnOneRank::Kind;
  for (const Kind kind : {Kind::kSocket, Kind::kFifo}) {
    SCOPED_TRACE(kind == Kind::kSocket ? "socket" : "FIFO");
    const SpecialFileOnOneRank special(kind, refused);
    const std::string mine = session().rank() == refused ? special.path() : path;
    auto var = Variable::create<double>(session(), {7, 3}, Layout::block(0));
    try {
      Checkpoint(session(), {{"var", var}}).restore(mine);
      ADD_FAILURE() << "expected the restore to fail";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), kind == Kind::kSocket ? ErrorCode::kIo : ErrorCode::kInvalidArgument)
          << e.what();
      EXPECT_EQ(e.context().rank, refused);
      EXPECT_EQ(e.context().checkpoint, special.path());
      EXPECT_NE(e.message().find(kind == Kind::kSocket ? "cannot open for reading"
                                                       : "is not a regular file"),
                std::string::npos)
          << e.what();
      EXPECT_EQ(e.failed_ranks(), 1) << e.what();
    }
    // Every rank left the failed restore in step.
    Checkpoint(session(), {{"var", var}}).restore(path).assert_consumed();
    EXPECT_EQ(global_mismatches(*var, 63), 0);
  }
}

// A save whose directory one rank cannot use (here a path under a regular file; on a cluster, a
// node whose mount is missing, stale or read-only): that rank's failure must not leave the others
// inside HDF5's collective create.
TEST(Semantics, ADirectoryOneRankCannotUseIsTheSameErrorEverywhere) {
  const std::string dir = scratch_dir();
  const int blocked = session().size() - 1;
  const std::string not_a_directory = dir + "/plain-file";
  if (session().rank() == 0) std::ofstream(not_a_directory) << "not a directory";
  session().comm().barrier();
  const std::string good = dir + "/saved.h5", bad = not_a_directory + "/saved.h5";
  const std::string mine = session().rank() == blocked ? bad : good;
  Checkpoint ckpt(session(), {{"var", make_var(64)}});
  try {
    ckpt.write(mine);
    ADD_FAILURE() << "expected the save to fail";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kIo) << e.what();
    EXPECT_EQ(e.context().rank, blocked);
    EXPECT_EQ(e.context().checkpoint, bad);
    EXPECT_EQ(e.failed_ranks(), 1) << e.what();
  }
  EXPECT_FALSE(std::filesystem::exists(good));
  // Every rank left the failed save in step, and the next one works.
  ckpt.write(good);
  auto var = Variable::create<double>(session(), {7, 3}, Layout::block(0));
  Checkpoint(session(), {{"var", var}}).restore(good).assert_consumed();
  EXPECT_EQ(global_mismatches(*var, 64), 0);
}

TEST(Semantics, AnAgreedRestoreFailureCarriesTheFailingRanksContextEverywhere) {
  const std::string dir = scratch_dir();
  const std::string path = Checkpoint(session(), {{"var", make_var(60)}}).write(dir + "/shape.h5");
  auto wrong = Variable::create<double>(session(), {7, 4}, Layout::block(0));
  try {
    Checkpoint(session(), {{"var", wrong}}).restore(path);
    FAIL() << "expected a shape mismatch";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kInvalidArgument);
    EXPECT_NE(e.message().find("shape mismatch"), std::string::npos) << e.what();
    EXPECT_EQ(e.context().rank, 0);  // every rank failed; rank 0 is the lowest
    EXPECT_EQ(e.context().checkpoint, path);
    EXPECT_EQ(e.context().key, "var/.ATTRIBUTES/VARIABLE_VALUE");
    EXPECT_EQ(e.context().operation, "restore");
    EXPECT_EQ(e.failed_ranks(), session().size());
  }
}

TEST(Semantics, AForeignExceptionWhileWritingGoesThroughTheAgreement) {
  const std::string dir = scratch_dir();
  const int failing = session().size() - 1;
  auto big = Variable::create<double>(session(), {1 << 18}, Layout::block(0));  // in a dataset
  Checkpoint ckpt(session(), {{"big", big}, {"small", make_var(61)}});
  {
    const ScopedEnv fault("CAIRN_FAULT_THROW", "during_data:" + std::to_string(failing));
    try {
      ckpt.write(dir + "/foreign.h5");
      ADD_FAILURE() << "expected the save to fail";
    } catch (const Error& e) {
      EXPECT_EQ(e.code(), ErrorCode::kIo) << e.what();
      EXPECT_NE(e.message().find("a foreign exception at 'during_data'"), std::string::npos)
          << e.what();
      EXPECT_EQ(e.context().rank, failing);
      EXPECT_EQ(e.context().operation, "save");
      EXPECT_EQ(e.failed_ranks(), 1);
    }
  }
  EXPECT_FALSE(std::filesystem::exists(dir + "/foreign.h5"));
  ckpt.write(dir + "/foreign.h5");  // every rank left the failed save in step
  EXPECT_TRUE(std::filesystem::exists(dir + "/foreign.h5"));
}

// Each local step that a save or a restore agrees on together with another (one collective for
// both, see Comm::allgather_agreed) still turns one rank's failure into the same error on every
// rank, leaves no file, and leaves the ranks in step.
TEST(Semantics, EveryMergedAgreementOfASaveReportsOneRanksFailureEverywhere) {
  const std::string dir = scratch_dir();
  const int last = session().size() - 1;
  auto big = Variable::create<double>(session(), {1 << 12, 3}, Layout::block(0));
  fill(*big, 62);
  // A replicated tensor's checksum reaches rank 0's table in the merge.
  auto rep = Variable::create<double>(session(), {5}, Layout::replicated());
  fill(*rep, 63);
  Checkpoint ckpt(session(), {{"big", big}, {"small", make_var(61)}, {"rep", rep}});
  ckpt.write(dir + "/first.h5");  // the plan and rank 0's table are kept
  // The table and its checksums are rank 0's alone. A failed save drops its plan: the one after
  // save_checksums plans anew, and rank 0 builds a table (save_table).
  const std::vector<std::pair<std::string, int>> faults{
      {"save_plan", last},   {"save_checksums", last},    {"save_table", 0},
      {"save_record", last}, {"save_table_checksums", 0}, {"save_plan", 0}};
  for (const auto& [phase, failing] : faults) {
    SCOPED_TRACE(phase + " on rank " + std::to_string(failing));
    expect_one_ranks_fault_everywhere(phase, failing, "save",
                                      [&] { ckpt.write(dir + "/merged.h5"); });
    EXPECT_FALSE(std::filesystem::exists(dir + "/merged.h5"));
    session().comm().barrier();  // rank 0 removes the temporary file before its error is thrown
    for (const auto& entry : std::filesystem::directory_iterator(dir))
      EXPECT_EQ(entry.path().filename().string().find("merged.h5.tmp-"), std::string::npos)
          << entry.path();
  }
  // In step, and the next save (planned anew after the failures) is whole.
  ckpt.write(dir + "/merged.h5");
  auto big_back = Variable::create<double>(session(), {1 << 12, 3}, Layout::block(1));
  auto rep_back = Variable::create<double>(session(), {5}, Layout::replicated());
  auto small_back = make_var(0);
  Checkpoint(session(), {{"big", big_back}, {"small", small_back}, {"rep", rep_back}})
      .restore(dir + "/merged.h5")
      .assert_consumed();
  EXPECT_EQ(global_mismatches(*big_back, 62), 0);
  EXPECT_EQ(global_mismatches(*small_back, 61), 0);
  EXPECT_EQ(global_mismatches(*rep_back, 63), 0);
}

TEST(Semantics, EveryMergedAgreementOfARestoreReportsOneRanksFailureEverywhere) {
  const std::string dir = scratch_dir();
  const int last = session().size() - 1;
  const std::string path = Checkpoint(session(), {{"var", make_var(65)}}).write(dir + "/r.h5");
  auto var = Variable::create<double>(session(), {7, 3}, Layout::block(0));
  Checkpoint ckpt(session(), {{"var", var}});
  for (const std::string phase : {"restore_before_read", "restore_after_read"}) {
    SCOPED_TRACE(phase);
    expect_one_ranks_fault_everywhere(phase, last, "restore", [&] { ckpt.restore(path); });
  }
  EXPECT_EQ(open_checkpoint_files(), 0);
  ckpt.restore(path).assert_consumed();
  EXPECT_EQ(global_mismatches(*var, 65), 0);
}

// State whose saved bytes never load: a deserialization failure.
class Unreadable : public StateObject {
 public:
  Unreadable() : StateObject(StateScope::kGlobal) {}
  std::string save_bytes() const override { return "x"; }
  void load_bytes(std::string_view) override {
    throw Error(ErrorCode::kSerialization, "cannot deserialize opaque state: truncated archive");
  }
};

TEST(Semantics, ASerializationErrorNamesItsCodeOnce) {
  const std::string dir = scratch_dir();
  const std::string path =
      Checkpoint(session(), {{"u", std::make_shared<Unreadable>()}}).write(dir + "/u.h5");
  try {
    Checkpoint(session(), {{"u", std::make_shared<Unreadable>()}}).restore(path);
    FAIL() << "expected a serialization error";
  } catch (const Error& e) {
    const std::string text = e.what();
    EXPECT_EQ(e.code(), ErrorCode::kSerialization);
    EXPECT_EQ(text.find("serialization error"), 0u) << text;
    EXPECT_EQ(text.find("serialization error", 1), std::string::npos) << text;
    EXPECT_EQ(e.context().key, "u/.ATTRIBUTES/STATE");
  }
}

TEST(Semantics, StatusLinesEscapeControlCharactersInNames) {
  const std::string dir = scratch_dir();
  const std::string path =
      Checkpoint(session(), {{"a\tb\nc", make_var(62)}}).write(dir + "/names.h5");
  Checkpoint ckpt(session());
  auto status = ckpt.restore(path);
  const std::string text = failure_of([&] { status.assert_consumed(); });
  EXPECT_NE(text.find("checkpoint object not matched: 'a\\tb\\nc' (variable)"), std::string::npos)
      << text;
  status.expect_partial();
}

TEST(Semantics, AnUnknownDTypeInANewerMinorFormatIsReportedNotSkipped) {
  const std::string dir = scratch_dir();
  auto w = make_var(70);
  Checkpoint ckpt(session(), {{"w", w}});
  CheckpointManager manager(ckpt, dir, {.max_to_keep = 2});
  manager.save();
  const std::string newest = *manager.save();
  if (session().rank() == 0) {
    // What a newer cairn might write: format 2.9 with a dtype code this reader does not know.
    testing::set_format_version(newest, "2.9");
    testing::patch_table_tensor(newest, "w/.ATTRIBUTES/VARIABLE_VALUE", 4, 200);
  }
  MPI_Barrier(MPI_COMM_WORLD);
  Checkpoint fresh(session(),
                   {{"w", Variable::create<double>(session(), {7, 3}, Layout::block(0))}});
  CheckpointManager restarted(fresh, dir, {.max_to_keep = 2});
  try {
    restarted.restore_or_initialize();
    FAIL() << "expected a version error, not a fallback to the older checkpoint";
  } catch (const Error& e) {
    EXPECT_EQ(e.code(), ErrorCode::kVersion) << e.what();
    EXPECT_NE(e.message().find("dtype code 200 is unknown to this reader"), std::string::npos)
        << e.what();
    EXPECT_EQ(e.context().checkpoint, newest);
  }
}

}  // namespace
}  // namespace cairn
