# Helpers shared by every folder's CMakeLists.txt.

# postly_test(NAME SOURCES... LIBS lib...)  — a cmocka unit test registered with CTest.
# Tests get POSTLY_SOURCE_DIR so they can find data files in the repository.
function(postly_test name)
  cmake_parse_arguments(T "" "" "SOURCES;LIBS" ${ARGN})
  add_executable(${name} ${T_SOURCES})
  target_link_libraries(${name} PRIVATE ${T_LIBS} PkgConfig::CMOCKA)
  target_compile_definitions(${name} PRIVATE POSTLY_SOURCE_DIR="${PROJECT_SOURCE_DIR}")
  add_test(NAME ${name} COMMAND ${name})
  set_tests_properties(${name} PROPERTIES TIMEOUT 300)
endfunction()
