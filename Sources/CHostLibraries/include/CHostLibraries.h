#ifndef CHOSTLIBRARIES_H
#define CHOSTLIBRARIES_H

#include <stddef.h>
#include <stdint.h>

/// The compression formats a Linux bzImage's payload may use that Hyperstep unpacks on the
/// host, each with the Debian system library that implements it.
enum hs_compression {
  HS_COMPRESSION_XZ = 1,    // liblzma.so.5
  HS_COMPRESSION_GZIP = 2,  // libz.so.1
  HS_COMPRESSION_ZSTD = 3,  // libzstd.so.1
};

/// Unpacks `in` (one stream of `kind`) into `out`. Returns 0 and sets `*out_len`, or -1 with
/// a one-line reason in `error` (the library missing, corrupt data, `out` too small).
int hs_decompress(int kind, const uint8_t *in, size_t in_len, uint8_t *out, size_t out_capacity,
                  size_t *out_len, char *error, size_t error_capacity);

#endif
