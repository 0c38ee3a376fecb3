# io: the libFuzzer target for the loaders (built with clang when available) and the CLI tests.

# ---- fuzz target: clang++ -fsanitize=fuzzer,address,undefined, run for a bounded number of inputs ----
option(ANYBCQ_FUZZ "Build and run the libFuzzer target for the file loaders when clang++ is available" ON)
if(ANYBCQ_FUZZ)
  if(CMAKE_CXX_COMPILER_ID STREQUAL "Clang")
    set(ANYBCQ_FUZZ_CXX ${CMAKE_CXX_COMPILER})
  else()
    find_program(ANYBCQ_FUZZ_CXX NAMES clang++ clang++-19 clang++-18 clang++-17 clang++-16 clang++-15 clang++-14)
  endif()
  if(ANYBCQ_FUZZ_CXX)
    # libFuzzer's runtime ships separately from clang on some systems: check it links before using it.
    set(_probe_dir ${CMAKE_CURRENT_BINARY_DIR}/fuzz_probe)
    file(MAKE_DIRECTORY ${_probe_dir})
    file(WRITE ${_probe_dir}/probe.cpp
      "#include <cstdint>\n#include <cstddef>\nextern \"C\" int LLVMFuzzerTestOneInput(const std::uint8_t*, std::size_t) { return 0; }\n")
    execute_process(COMMAND ${ANYBCQ_FUZZ_CXX} -fsanitize=fuzzer,address,undefined ${_probe_dir}/probe.cpp
                            -o ${_probe_dir}/probe
                    RESULT_VARIABLE _probe_rc OUTPUT_QUIET ERROR_QUIET)
    if(_probe_rc EQUAL 0)
      set(_fuzz_bin ${CMAKE_CURRENT_BINARY_DIR}/fuzz_loader)
      file(GLOB _io_headers CONFIGURE_DEPENDS ${PROJECT_SOURCE_DIR}/include/anybcq/io/*.hpp
           ${PROJECT_SOURCE_DIR}/include/anybcq/core/*.hpp ${PROJECT_SOURCE_DIR}/include/anybcq/layout/*.hpp)
      add_custom_command(OUTPUT ${_fuzz_bin}
        COMMAND ${ANYBCQ_FUZZ_CXX} -std=c++17 -g -O1 -fsanitize=fuzzer,address,undefined
                -fno-sanitize-recover=undefined -Wall -Wextra -I${PROJECT_SOURCE_DIR}/include
                ${CMAKE_CURRENT_LIST_DIR}/fuzz_loader.cpp -o ${_fuzz_bin}
        DEPENDS ${CMAKE_CURRENT_LIST_DIR}/fuzz_loader.cpp ${_io_headers}
        COMMENT "Building libFuzzer target fuzz_loader with ${ANYBCQ_FUZZ_CXX}"
        VERBATIM)
      add_custom_target(anybcq_fuzz_loader ALL DEPENDS ${_fuzz_bin})
      # New inputs go to a scratch corpus in the build tree; the committed seeds are only read.
      set(_scratch ${CMAKE_CURRENT_BINARY_DIR}/fuzz_corpus)
      file(MAKE_DIRECTORY ${_scratch})
      add_test(NAME io_fuzz_loader
               COMMAND ${_fuzz_bin} -runs=20000 -max_total_time=20 -timeout=10 -rss_limit_mb=2048
                       -artifact_prefix=${CMAKE_CURRENT_BINARY_DIR}/fuzz-crash- ${_scratch}
                       ${CMAKE_CURRENT_LIST_DIR}/corpus)
      set_tests_properties(io_fuzz_loader PROPERTIES TIMEOUT 120)
    else()
      message(STATUS "AnyBCQ: ${ANYBCQ_FUZZ_CXX} cannot link -fsanitize=fuzzer: fuzz target skipped")
    endif()
  else()
    message(STATUS "AnyBCQ: clang++ not found: fuzz target skipped")
  endif()
endif()

# ---- CLI tests: exit codes, messages, the written file against the library, interrupted runs ----
if(ANYBCQ_BUILD_EXAMPLES AND EXISTS ${PROJECT_SOURCE_DIR}/examples/anybcq/CMakeLists.txt)
  add_executable(anybcq_cli_tests ${CMAKE_CURRENT_SOURCE_DIR}/main.cpp ${CMAKE_CURRENT_LIST_DIR}/cli_tests.cpp)
  target_link_libraries(anybcq_cli_tests PRIVATE AnyBCQ::anybcq anybcq_warnings)
  target_include_directories(anybcq_cli_tests PRIVATE ${DOCTEST_INCLUDE_DIR} ${CMAKE_CURRENT_SOURCE_DIR})
  target_compile_definitions(anybcq_cli_tests PRIVATE ANYBCQ_CLI="$<TARGET_FILE:anybcq_cli>")
  add_dependencies(anybcq_cli_tests anybcq_cli)
  add_test(NAME io_cli COMMAND anybcq_cli_tests)
  set_tests_properties(io_cli PROPERTIES TIMEOUT 300)
endif()
