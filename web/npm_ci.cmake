# Runs `npm ci` in WEB_DIR only when node_modules is missing or package-lock.json is newer than
# the install (node_modules/.package-lock.json, which npm writes). A second build directory
# (Release and ASan share web/) then finds it installed instead of reinstalling under the
# other build's feet. Usage: cmake -DNPM=... -DWEB_DIR=... -P npm_ci.cmake

set(installed "${WEB_DIR}/node_modules/.package-lock.json")
if(EXISTS "${installed}" AND NOT "${WEB_DIR}/package-lock.json" IS_NEWER_THAN "${installed}")
  # Up to date: mark it newer than package.json too, so the build does not ask again.
  file(TOUCH "${installed}")
  return()
endif()
execute_process(COMMAND "${NPM}" ci --no-audit --no-fund --loglevel=error
  WORKING_DIRECTORY "${WEB_DIR}" RESULT_VARIABLE rc)
if(NOT rc EQUAL 0)
  message(FATAL_ERROR "npm ci failed in ${WEB_DIR} (exit ${rc}); is the npm registry reachable?")
endif()
