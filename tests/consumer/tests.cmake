# Consumer projects as tests: one through find_package(AnyBCQ) after an install, one through add_subdirectory.
foreach(mode find_package subdirectory)
  add_test(NAME consumer_${mode}
           COMMAND ${CMAKE_COMMAND} -DMODE=${mode} -DSOURCE_DIR=${PROJECT_SOURCE_DIR} -DBUILD_DIR=${PROJECT_BINARY_DIR}
                   -DWORK_DIR=${CMAKE_CURRENT_BINARY_DIR}/consumer_${mode} -DCONSUMER_DIR=${CMAKE_CURRENT_LIST_DIR}
                   -P ${CMAKE_CURRENT_LIST_DIR}/run.cmake)
  set_tests_properties(consumer_${mode} PROPERTIES TIMEOUT 600)
endforeach()
