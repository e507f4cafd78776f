// <immintrin.h> for the products family's AVX-512 code. GCC 12's AVX-512 intrinsics initialise
// their unused pass-through operand from itself (_mm512_undefined_*), which -Wall then reports as
// uninitialised wherever they are inlined; that operand is never read, so the warning is off for
// the files that include this header.
#pragma once
#pragma GCC diagnostic ignored "-Wuninitialized"
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#include <immintrin.h>
