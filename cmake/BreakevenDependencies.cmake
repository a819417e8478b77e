# Every dependency comes from a Debian 12 package (scripts/setup.sh installs them); nothing is
# downloaded at build time.
set(THREADS_PREFER_PTHREAD_FLAG ON)
find_package(Threads REQUIRED)
find_package(Boost 1.74 REQUIRED)                     # Asio and Beast are header-only
find_package(Protobuf REQUIRED)
find_package(SQLite3 REQUIRED)
find_package(spdlog REQUIRED)
find_package(fmt REQUIRED)
find_package(CLI11 REQUIRED)
find_package(nlohmann_json 3.10 REQUIRED)
find_package(yaml-cpp REQUIRED)                      # benchmark matrix files
if(BREAKEVEN_BUILD_TESTS)
  find_package(GTest REQUIRED)
endif()
find_package(OpenMP REQUIRED COMPONENTS CXX)      # the CPU backend's threads (libgomp, part of gcc)
