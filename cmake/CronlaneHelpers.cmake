# Helpers shared by the per-directory CMakeLists.

# Warnings for our own targets (not for third-party headers, which are SYSTEM).
function(cronlane_warnings target)
  target_compile_options(${target} PRIVATE
    -Wall -Wextra -Wpedantic -Wshadow -Wnon-virtual-dtor -Woverloaded-virtual
    -Wcast-align -Wimplicit-fallthrough
    -Wno-missing-field-initializers)  # designated initializers leave defaults on purpose
endfunction()

# cronlane_library(NAME MODULE dir SOURCES ... DEPS ...): a static library of the
# module `dir` (common, dispatcher, operator, worker, cli). Includes read
# "common/status.h", "dispatcher/cron.h", but a module's include root holds only
# its own directory (build/include/<dir>/<dir> -> <dir>/): another module's
# headers are found only through DEPS, so an include that crosses the layering of
# docs/architecture.md without a dependency fails to compile.
function(cronlane_library name)
  cmake_parse_arguments(ARG "" "MODULE" "SOURCES;DEPS" ${ARGN})
  if(NOT ARG_MODULE)
    message(FATAL_ERROR "cronlane_library(${name}): MODULE is required")
  endif()
  set(root ${PROJECT_BINARY_DIR}/include/${ARG_MODULE})
  if(NOT EXISTS ${root}/${ARG_MODULE})
    file(MAKE_DIRECTORY ${root})
    file(CREATE_LINK ${PROJECT_SOURCE_DIR}/${ARG_MODULE} ${root}/${ARG_MODULE} SYMBOLIC)
  endif()
  add_library(${name} STATIC ${ARG_SOURCES})
  target_include_directories(${name} PUBLIC ${root} ${PROJECT_BINARY_DIR}/generated)
  target_link_libraries(${name} PUBLIC ${ARG_DEPS})
  cronlane_warnings(${name})
endfunction()

# cronlane_test(NAME SOURCES ... DEPS ... LABEL unit|integration|e2e [FIXTURES ...] [WHOLE])
# A GoogleTest binary whose tests are discovered into ctest with a label (WHOLE: one
# ctest test runs the whole binary).
function(cronlane_test name)
  cmake_parse_arguments(ARG "WHOLE" "LABEL;TIMEOUT" "SOURCES;DEPS;FIXTURES" ${ARGN})
  if(NOT ARG_TIMEOUT)
    set(ARG_TIMEOUT 120)
  endif()
  add_executable(${name} ${ARG_SOURCES})
  # Tests may look anywhere (tests/support/, any module).
  target_include_directories(${name} PRIVATE ${PROJECT_SOURCE_DIR})
  target_link_libraries(${name} PRIVATE ${ARG_DEPS} GTest::gmock GTest::gtest_main)
  set_target_properties(${name} PROPERTIES RUNTIME_OUTPUT_DIRECTORY ${CMAKE_BINARY_DIR}/tests)
  cronlane_warnings(${name})
  # Where tests find the repo (crds/, samples) and the built binaries.
  target_compile_definitions(${name} PRIVATE
    CRONLANE_SOURCE_DIR="${PROJECT_SOURCE_DIR}" CRONLANE_BIN_DIR="${CMAKE_BINARY_DIR}/bin")
  set(props LABELS ${ARG_LABEL} TIMEOUT ${ARG_TIMEOUT})
  if(ARG_FIXTURES)
    list(APPEND props FIXTURES_REQUIRED "${ARG_FIXTURES}")
  endif()
  if(ARG_WHOLE)
    # One ctest test for the whole binary (a suite that sets up once for its tests).
    add_test(NAME ${name} COMMAND ${name})
    set_tests_properties(${name} PROPERTIES ${props})
  else()
    gtest_discover_tests(${name} DISCOVERY_MODE PRE_TEST PROPERTIES ${props})
  endif()
endfunction()
