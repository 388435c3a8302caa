// test_main.cpp: GoogleTest entry point; logs only warnings so test output stays readable.
#include <gtest/gtest.h>

#include "core/log.h"

int main(int argc, char** argv) {
    ::testing::InitGoogleTest(&argc, argv);
    chronos::log_init(chronos::LogLevel::quiet);
    return RUN_ALL_TESTS();
}
