add_library(cairn_warnings INTERFACE)
target_compile_options(cairn_warnings INTERFACE -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor
  -Wno-missing-field-initializers  # designated initializers rely on member defaults on purpose
  $<$<BOOL:${CAIRN_WERROR}>:-Werror>)
if(CAIRN_SANITIZE)
  target_compile_options(cairn_warnings INTERFACE -fsanitize=${CAIRN_SANITIZE} -fno-omit-frame-pointer)
  target_link_options(cairn_warnings INTERFACE -fsanitize=${CAIRN_SANITIZE})
endif()
