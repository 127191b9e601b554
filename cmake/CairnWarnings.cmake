add_library(cairn_warnings INTERFACE)
target_compile_options(cairn_warnings INTERFACE -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor
  -Wno-missing-field-initializers  # designated initializers rely on member defaults on purpose
  $<$<BOOL:${CAIRN_WERROR}>:-Werror>)
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
