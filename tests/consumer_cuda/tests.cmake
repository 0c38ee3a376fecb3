# The CUDA component as a downstream project sees it: installed, then found with
# find_package(AnyBCQ COMPONENTS cuda) by a CUDA project built with the same nvcc.
if(ANYBCQ_HAS_CUDA)
  add_test(NAME consumer_cuda_find_package
           COMMAND ${CMAKE_COMMAND} -DMODE=find_package -DSOURCE_DIR=${PROJECT_SOURCE_DIR} -DBUILD_DIR=${PROJECT_BINARY_DIR}
                   -DWORK_DIR=${CMAKE_CURRENT_BINARY_DIR}/consumer_cuda -DCONSUMER_DIR=${CMAKE_CURRENT_LIST_DIR}
                   -DCUDA_COMPILER=${CMAKE_CUDA_COMPILER} -P ${PROJECT_SOURCE_DIR}/tests/consumer/run.cmake)
  set_tests_properties(consumer_cuda_find_package PROPERTIES TIMEOUT 600)
endif()
