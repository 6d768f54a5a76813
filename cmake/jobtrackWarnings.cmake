# Warning flags for jobtrack's own tests, examples and benchmarks (never
# imposed on consumers). Usage: jobtrack_set_warnings(<target>)
function(jobtrack_set_warnings target)
  if(MSVC)
    target_compile_options(${target} PRIVATE /W4 /WX)
  else()
    target_compile_options(${target} PRIVATE -Wall -Wextra -Wpedantic -Werror)
    # GCC 12 at -O2/-O3 reports -Wrestrict inside libstdc++ for plain
    # `"literal" + std::string` (GCC bug 105329): keep it a warning there.
    if(CMAKE_CXX_COMPILER_ID STREQUAL "GNU" AND CMAKE_CXX_COMPILER_VERSION VERSION_GREATER_EQUAL 12
       AND CMAKE_CXX_COMPILER_VERSION VERSION_LESS 13)
      target_compile_options(${target} PRIVATE -Wno-error=restrict)
    endif()
  endif()
endfunction()
