// SPDX-License-Identifier: Apache-2.0
// The four status checks with TensorFlow's meanings, as global verdicts.
#include <gtest/gtest.h>

#include <cstdlib>

#include "cairn/cairn.hpp"
#include "support/test_support.hpp"

namespace cairn {
namespace {

using testing::session;

using testing::fill;
using testing::scratch_dir;

std::shared_ptr<Module> model_with(std::initializer_list<const char*> names) {
  auto m = std::make_shared<Module>();
  int id = 0;
  for (const char* name : names) {
    auto v = Variable::create<float>(session(), {5, 2}, Layout::block(0));
    fill(*v, id++);
    m->track(name, v);
  }
  return m;
}

// Every rank must see the same failure text: gather it and compare on rank 0.
void expect_same_failure_everywhere(const std::function<void()>& check, const std::string& needle) {
  std::string text;
  try {
    check();
  } catch (const Error& e) {
    text = e.what();
  }
  EXPECT_NE(text.find(needle), std::string::npos) << "'" << text << "' lacks '" << needle << "'";
  const auto all = session().comm().gather(text, 0);
  for (const auto& t : all) EXPECT_EQ(t, all[0]);
}

std::string saved_with(std::initializer_list<const char*> names) {
  const std::string dir = scratch_dir();
  Checkpoint ckpt(session(), {{"model", model_with(names)}});
  return ckpt.write(dir + "/c.h5");
}

TEST(Status, ExactMatchPassesAllChecks) {
  const std::string path = saved_with({"a", "b"});
  Checkpoint ckpt(session(), {{"model", model_with({"a", "b"})}});
  auto status = ckpt.read(path);
  status.assert_consumed().assert_existing_objects_matched().assert_nontrivial_match();
  RestoreSummary s = status.summary();
  EXPECT_EQ(s.checkpoint_objects, 3);  // model, a, b
  EXPECT_EQ(s.matched_objects, 3);
  EXPECT_EQ(s.checkpoint_values, 2);
  EXPECT_EQ(s.restored_values, 2);
  EXPECT_EQ(s.unmatched_live_objects, 0);
}

TEST(Status, CheckpointWithExtraObjectsFailsConsumedButExistingMatches) {
  const std::string path = saved_with({"a", "b"});
  Checkpoint ckpt(session(), {{"model", model_with({"a"})}});
  auto status = ckpt.read(path);
  status.assert_existing_objects_matched().assert_nontrivial_match();
  expect_same_failure_everywhere([&] { status.assert_consumed(); }, "'model/b' (variable)");
  status.expect_partial();
}

TEST(Status, LiveObjectMissingFromCheckpointFailsBothMatchChecks) {
  const std::string path = saved_with({"a"});
  Checkpoint ckpt(session(), {{"model", model_with({"a", "extra"})}});
  auto status = ckpt.read(path);
  status.assert_nontrivial_match();
  expect_same_failure_everywhere([&] { status.assert_existing_objects_matched(); },
                                 "live object not in the checkpoint: 'model/extra'");
  expect_same_failure_everywhere([&] { status.assert_consumed(); }, "'model/extra'");
}

TEST(Status, NothingMatchedFailsNontrivialMatch) {
  const std::string path = saved_with({"a"});
  Checkpoint ckpt(session(), {{"other", model_with({"a"})}});
  auto status = ckpt.read(path);
  expect_same_failure_everywhere([&] { status.assert_nontrivial_match(); },
                                 "nothing but the root object was matched");
  status.expect_partial();
}

// The error of a failed check, caught on this rank.
Error failure_of(const std::function<void()>& check) {
  try {
    check();
  } catch (const Error& e) {
    return e;
  }
  ADD_FAILURE() << "the check passed";
  return Error(ErrorCode::kInternal, "no failure");
}

TEST(Status, FailedCheckCarriesItsContextOnEveryRank) {
  const std::string path = saved_with({"a", "b"});
  const int last = session().size() - 1;
  auto model = model_with({"a"});
  // Only the last rank tracks an object the checkpoint lacks (a module: local to create).
  if (session().rank() == last) model->track("extra", std::make_shared<Module>());
  Checkpoint ckpt(session(), {{"model", model}});
  auto status = ckpt.read(path);

  const Error consumed = failure_of([&] { status.assert_consumed(); });
  EXPECT_EQ(consumed.code(), ErrorCode::kNotFound);
  EXPECT_EQ(consumed.context().checkpoint, path);
  EXPECT_EQ(consumed.context().operation, "assert_consumed");
  EXPECT_EQ(consumed.context().rank, 0);  // the lowest rank with a problem: all lack 'model/b'
  EXPECT_EQ(consumed.context().key, "model/b");
  EXPECT_EQ(consumed.failed_ranks(), session().size());

  // The one problem is the last rank's alone: the context names that rank and the object.
  const Error existing = failure_of([&] { status.assert_existing_objects_matched(); });
  EXPECT_EQ(existing.code(), ErrorCode::kNotFound);
  EXPECT_EQ(existing.context().checkpoint, path);
  EXPECT_EQ(existing.context().operation, "assert_existing_objects_matched");
  EXPECT_EQ(existing.context().rank, last);
  EXPECT_EQ(existing.context().key, "model/extra");
  EXPECT_EQ(existing.failed_ranks(), 1);
  const std::string rank_text = "rank " + std::to_string(last);
  EXPECT_NE(std::string(existing.what()).find("[" + rank_text + ", checkpoint "), std::string::npos)
      << existing.what();

  Checkpoint other(session(), {{"other", model_with({"a"})}});
  auto nothing = other.read(path);
  const Error trivial = failure_of([&] { nothing.assert_nontrivial_match(); });
  EXPECT_EQ(trivial.context().checkpoint, path);
  EXPECT_EQ(trivial.context().operation, "assert_nontrivial_match");
  EXPECT_EQ(trivial.context().rank, 0);
  EXPECT_EQ(trivial.context().key, "");  // a problem of no single object
  nothing.expect_partial();
  status.expect_partial();

  // Every rank holds the same error, context included.
  for (const Error* e : {&consumed, &existing, &trivial}) {
    const auto all = session().comm().gather(
        std::string(e->what()) + "|" + e->context().key + "|" + std::to_string(e->context().rank),
        0);
    for (const auto& t : all) EXPECT_EQ(t, all[0]);
  }
}

TEST(Status, FailureMessageSummarizesInsteadOfFlooding) {
  std::vector<const char*> many = {"v0",  "v1",  "v2",  "v3",  "v4",  "v5",  "v6",  "v7",  "v8",
                                   "v9",  "v10", "v11", "v12", "v13", "v14", "v15", "v16", "v17",
                                   "v18", "v19", "v20", "v21", "v22", "v23", "v24"};
  const std::string dir = scratch_dir();
  auto m = std::make_shared<Module>();
  for (const char* name : many) m->track(name, Variable::create<float>(session(), {2}));
  const std::string path = Checkpoint(session(), {{"m", m}}).write(dir + "/many.h5");
  Checkpoint empty(session(), {{"m", std::make_shared<Module>()}});
  auto status = empty.read(path);
  std::string text;
  try {
    status.assert_consumed();
  } catch (const Error& e) {
    text = e.what();
  }
  EXPECT_NE(text.find("25 problem(s)"), std::string::npos) << text;
  EXPECT_NE(text.find("... and 5 more"), std::string::npos) << text;
  EXPECT_EQ(text.find("(rank "), std::string::npos)
      << "identical per-rank lines must merge: " << text;
  status.expect_partial();
}

TEST(Status, TheProblemCountIsExactBeyondWhatEachRankLists) {
  const std::string path = saved_with({"a"});
  Checkpoint ckpt(session(), {{"model", model_with({"a"})}});
  // More problems than one rank lists: objects of this rank's own, and some on every rank
  // (one problem each, named for all ranks).
  constexpr int kOwn = 250, kCommon = 10;
  const std::string me = std::to_string(session().rank());
  for (int i = 0; i < kOwn; ++i)
    ckpt.root().track("own" + me + "_" + std::to_string(i), std::make_shared<Module>());
  for (int i = 0; i < kCommon; ++i)
    ckpt.root().track("common" + std::to_string(i), std::make_shared<Module>());
  auto status = ckpt.read(path);
  const int total = kOwn * session().size() + kCommon;
  expect_same_failure_everywhere([&] { status.assert_existing_objects_matched(); },
                                 ": " + std::to_string(total) + " problem(s)");
  expect_same_failure_everywhere([&] { status.assert_consumed(); },
                                 "... and " + std::to_string(total - 20) + " more");
}

TEST(Status, AFailureWhileOneRankBuildsItsReportReachesEveryRank) {
  const std::string path = saved_with({"a", "b"});
  Checkpoint ckpt(session(), {{"model", model_with({"a"})}});
  auto status = ckpt.read(path);
  const int failing = session().size() - 1;
  ::setenv("CAIRN_FAULT_THROW", ("status_report:" + std::to_string(failing)).c_str(), 1);
  for (const auto& check : std::vector<std::function<void()>>{
           [&] { status.assert_consumed(); }, [&] { status.assert_existing_objects_matched(); },
           [&] { status.assert_nontrivial_match(); }, [&] { status.summary(); }}) {
    const Error e = failure_of(check);
    EXPECT_NE(e.message().find("a foreign exception at 'status_report'"), std::string::npos)
        << e.what();
    EXPECT_EQ(e.context().rank, failing);
    EXPECT_EQ(e.failed_ranks(), 1);
  }
  ::unsetenv("CAIRN_FAULT_THROW");
  expect_same_failure_everywhere([&] { status.assert_consumed(); }, "'model/b' (variable)");
  status.expect_partial();
}

}  // namespace
}  // namespace cairn
