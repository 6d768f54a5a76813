#pragma once

// One include for the tests, whichever Catch2 is installed: v3 (vcpkg, newer
// distributions) or v2 (Debian bookworm's 2.13). Tests use only the API the
// two share.
#if __has_include(<catch2/catch_test_macros.hpp>)
#include <catch2/catch_test_macros.hpp>
#include <catch2/matchers/catch_matchers_string.hpp>
#else
#include <catch2/catch.hpp>
#endif
