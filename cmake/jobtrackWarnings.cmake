# Warning flags for jobtrack's own tests, examples and benchmarks (never
# imposed on consumers). Usage: jobtrack_set_warnings(<target>)
function(jobtrack_set_warnings target)
  if(MSVC)
    target_compile_options(${target} PRIVATE /W4 /WX)
  else()
    target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Werror)
  endif()
endfunction()
