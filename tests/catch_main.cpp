// Catch2 v2's main; with Catch2 v3 the tests link Catch2::Catch2WithMain.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
