# SPDX-License-Identifier: Apache-2.0
add_library(cairn_warnings INTERFACE)
target_compile_options(cairn_warnings INTERFACE -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor
  -Wno-missing-field-initializers  # designated initializers rely on member defaults on purpose
  $<$<BOOL:${CAIRN_WERROR}>:-Werror>)
# GCC 12 at -O3 (Release, which scripts/bench builds) reports a memcpy of 2^63 bytes in libstdc++'s
# `"literal" + std::string&&` (GCC PR 105329, a false positive in its own headers). Keep it
# printed, but not fatal, on that compiler only.
if(CAIRN_WERROR AND CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_GREATER_EQUAL 12
   AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
  target_compile_options(cairn_warnings INTERFACE -Wno-error=restrict)
endif()
if(CAIRN_SANITIZE)
  target_compile_options(cairn_warnings INTERFACE -fsanitize=${CAIRN_SANITIZE} -fno-omit-frame-pointer)
  target_link_options(cairn_warnings INTERFACE -fsanitize=${CAIRN_SANITIZE})
  # A UBSan finding is otherwise a printed warning and the process goes on: make it abort, so the
  # test fails even where nobody greps its output (scripts/sanitize, tests that fork their own jobs).
  if(CAIRN_SANITIZE MATCHES "undefined")
    target_compile_options(cairn_warnings INTERFACE -fno-sanitize-recover=undefined)
    target_link_options(cairn_warnings INTERFACE -fno-sanitize-recover=undefined)
  endif()
endif()
