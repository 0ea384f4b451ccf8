// SPDX-License-Identifier: MPL-2.0
// bcryptprimitives.dll for running gstdlc's Windows binaries under Wine 8.0 only; never shipped.
//
// Rust's standard library takes its random bytes (HashMap seeds) from ProcessPrng in
// bcryptprimitives.dll, which every Windows since 10 has and Wine 8.0 lacks, so no Rust binary
// starts there. This stand-in gives ProcessPrng the bytes of RtlGenRandom (advapi32's
// SystemFunction036), which Wine has.
#include <windows.h>

BOOLEAN WINAPI SystemFunction036(PVOID buffer, ULONG length);

BOOL WINAPI ProcessPrng(PBYTE data, SIZE_T length)
{
    // RtlGenRandom takes a 32-bit length; ProcessPrng a pointer-sized one.
    while (length > 0) {
        ULONG chunk = length > 0x10000000 ? 0x10000000 : (ULONG)length;
        if (!SystemFunction036(data, chunk))
            return FALSE;
        data += chunk;
        length -= chunk;
    }
    return TRUE;
}
