// The one Catch2 main shared by the unit, pg and scenario test executables.
#define CATCH_CONFIG_MAIN
#include <catch2/catch.hpp>
