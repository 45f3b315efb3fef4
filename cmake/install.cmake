# Installation of the library for embedding: header, shared and static
# libraries, the Lua module, the CMake package config (find_package(triage))
# and triage.pc for pkg-config. Included from the top-level CMakeLists.txt,
# which defines the targets.
include(CMakePackageConfigHelpers)

install(TARGETS triage_shared triage_static EXPORT triageTargets
  LIBRARY DESTINATION ${CMAKE_INSTALL_LIBDIR}
  ARCHIVE DESTINATION ${CMAKE_INSTALL_LIBDIR})
install(FILES core/include/triage.h DESTINATION ${CMAKE_INSTALL_INCLUDEDIR})

# The Lua module goes where Lua 5.4 looks for C modules under the prefix,
# and the Lua half of the engine also where it looks for Lua modules, so
# that require "triage.graph" works from any host with LUA_PATH set.
install(TARGETS triage_lua LIBRARY DESTINATION ${TRIAGE_LUA_CMOD_DIR})
install(DIRECTORY lua/triage/ DESTINATION ${TRIAGE_LUA_LMOD_DIR}/triage)

install(FILES docs/triage.1 DESTINATION ${CMAKE_INSTALL_MANDIR}/man1)
install(DIRECTORY examples/ DESTINATION ${CMAKE_INSTALL_DOCDIR}/examples)

set(TRIAGE_CMAKE_DIR ${CMAKE_INSTALL_LIBDIR}/cmake/triage)
install(EXPORT triageTargets NAMESPACE triage:: DESTINATION ${TRIAGE_CMAKE_DIR})
configure_package_config_file(cmake/triageConfig.cmake.in ${PROJECT_BINARY_DIR}/triageConfig.cmake
  INSTALL_DESTINATION ${TRIAGE_CMAKE_DIR})
write_basic_package_version_file(${PROJECT_BINARY_DIR}/triageConfigVersion.cmake
  COMPATIBILITY SameMajorVersion)
install(FILES ${PROJECT_BINARY_DIR}/triageConfig.cmake ${PROJECT_BINARY_DIR}/triageConfigVersion.cmake
  DESTINATION ${TRIAGE_CMAKE_DIR})

# triage.pc carries absolute paths, so it is written at install time, when
# the prefix given to 'cmake --install --prefix' is known.
install(CODE "
  set(CMAKE_INSTALL_LIBDIR \"${CMAKE_INSTALL_LIBDIR}\")
  set(CMAKE_INSTALL_INCLUDEDIR \"${CMAKE_INSTALL_INCLUDEDIR}\")
  set(PROJECT_VERSION \"${PROJECT_VERSION}\")
  configure_file(\"${PROJECT_SOURCE_DIR}/cmake/triage.pc.in\" \"${PROJECT_BINARY_DIR}/triage.pc\" @ONLY)
")
install(FILES ${PROJECT_BINARY_DIR}/triage.pc DESTINATION ${CMAKE_INSTALL_LIBDIR}/pkgconfig)
