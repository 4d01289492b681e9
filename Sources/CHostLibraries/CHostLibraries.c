// Host-side decompression of a Linux kernel's payload through the Debian system libraries,
// opened with dlopen at the moment they are needed: the libraries (liblzma5, zlib1g,
// libzstd1) are on every Debian system because apt and dpkg need them, while their -dev
// packages, which a link-time dependency would require for building Hyperstep, are not.
// Only the few entry points used are declared here, with the types of their public headers
// (lzma/container.h, zlib.h, zstd.h), which are stable ABI.
#include "CHostLibraries.h"

#include <dlfcn.h>
#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static void fail(char *error, size_t capacity, const char *format, ...) {
  if (capacity == 0) return;
  va_list args;
  va_start(args, format);
  vsnprintf(error, capacity, format, args);
  va_end(args);
}

static void *open_library(const char *name, char *error, size_t capacity) {
  void *handle = dlopen(name, RTLD_NOW | RTLD_LOCAL);
  if (handle == NULL) fail(error, capacity, "cannot load %s (%s)", name, dlerror());
  return handle;
}

// liblzma: lzma_stream_buffer_decode decodes one .xz stream held wholly in memory; bytes after
// the stream (the kernel's build appends the uncompressed size) are left unread.
typedef int (*lzma_stream_buffer_decode_fn)(uint64_t *memlimit, uint32_t flags, const void *allocator,
                                            const uint8_t *in, size_t *in_pos, size_t in_size, uint8_t *out,
                                            size_t *out_pos, size_t out_size);

static int unpack_xz(const uint8_t *in, size_t in_len, uint8_t *out, size_t cap, size_t *out_len, char *error,
                     size_t error_capacity) {
  void *library = open_library("liblzma.so.5", error, error_capacity);
  if (library == NULL) return -1;
  lzma_stream_buffer_decode_fn decode =
      (lzma_stream_buffer_decode_fn)dlsym(library, "lzma_stream_buffer_decode");
  if (decode == NULL) {
    fail(error, error_capacity, "liblzma.so.5 has no lzma_stream_buffer_decode");
    return -1;
  }
  uint64_t memlimit = UINT64_MAX;
  size_t in_pos = 0, out_pos = 0;
  int status = decode(&memlimit, 0, NULL, in, &in_pos, in_len, out, &out_pos, cap);
  if (status != 0) {  // LZMA_OK
    // LZMA_BUF_ERROR (10): output full or input truncated; LZMA_DATA_ERROR (9): corrupt.
    fail(error, error_capacity, "the XZ payload does not unpack (liblzma status %d%s)", status,
         status == 10 ? ": truncated, or larger than its recorded size" : status == 9 ? ": corrupt data" : "");
    return -1;
  }
  *out_len = out_pos;
  return 0;
}

// zlib: a gzip stream through inflate with windowBits 16 + 15 (gzip wrapper, 32 KiB window).
typedef struct {
  const uint8_t *next_in;
  unsigned avail_in;
  unsigned long total_in;
  uint8_t *next_out;
  unsigned avail_out;
  unsigned long total_out;
  const char *msg;
  void *state;
  void *zalloc;
  void *zfree;
  void *opaque;
  int data_type;
  unsigned long adler;
  unsigned long reserved;
} hs_z_stream;
typedef int (*inflateInit2_fn)(hs_z_stream *, int, const char *, int);
typedef int (*inflate_fn)(hs_z_stream *, int);
typedef int (*inflateEnd_fn)(hs_z_stream *);

static int unpack_gzip(const uint8_t *in, size_t in_len, uint8_t *out, size_t cap, size_t *out_len, char *error,
                       size_t error_capacity) {
  void *library = open_library("libz.so.1", error, error_capacity);
  if (library == NULL) return -1;
  inflateInit2_fn init = (inflateInit2_fn)dlsym(library, "inflateInit2_");
  inflate_fn inflate = (inflate_fn)dlsym(library, "inflate");
  inflateEnd_fn end = (inflateEnd_fn)dlsym(library, "inflateEnd");
  const char *(*version)(void) = (const char *(*)(void))dlsym(library, "zlibVersion");
  if (init == NULL || inflate == NULL || end == NULL || version == NULL) {
    fail(error, error_capacity, "libz.so.1 lacks inflate");
    return -1;
  }
  if (in_len > 0xffffffffu || cap > 0xffffffffu) {
    fail(error, error_capacity, "the gzip payload is larger than 4 GiB");
    return -1;
  }
  hs_z_stream stream;
  memset(&stream, 0, sizeof stream);
  if (init(&stream, 16 + 15, version(), (int)sizeof stream) != 0) {
    fail(error, error_capacity, "zlib's inflateInit2 failed");
    return -1;
  }
  stream.next_in = in;
  stream.avail_in = (unsigned)in_len;
  stream.next_out = out;
  stream.avail_out = (unsigned)cap;
  int status = inflate(&stream, 4);  // Z_FINISH
  size_t produced = stream.total_out;
  end(&stream);
  if (status != 1) {  // Z_STREAM_END
    fail(error, error_capacity, "the gzip payload does not unpack (zlib status %d)", status);
    return -1;
  }
  *out_len = produced;
  return 0;
}

// libzstd: one frame, its size recorded in the frame or bounded by `cap`.
typedef size_t (*ZSTD_decompress_fn)(void *dst, size_t cap, const void *src, size_t size);
typedef unsigned (*ZSTD_isError_fn)(size_t code);
typedef const char *(*ZSTD_getErrorName_fn)(size_t code);

static int unpack_zstd(const uint8_t *in, size_t in_len, uint8_t *out, size_t cap, size_t *out_len, char *error,
                       size_t error_capacity) {
  void *library = open_library("libzstd.so.1", error, error_capacity);
  if (library == NULL) return -1;
  ZSTD_decompress_fn decompress = (ZSTD_decompress_fn)dlsym(library, "ZSTD_decompress");
  ZSTD_isError_fn is_error = (ZSTD_isError_fn)dlsym(library, "ZSTD_isError");
  ZSTD_getErrorName_fn name = (ZSTD_getErrorName_fn)dlsym(library, "ZSTD_getErrorName");
  if (decompress == NULL || is_error == NULL || name == NULL) {
    fail(error, error_capacity, "libzstd.so.1 lacks ZSTD_decompress");
    return -1;
  }
  size_t result = decompress(out, cap, in, in_len);
  if (is_error(result)) {
    fail(error, error_capacity, "the zstd payload does not unpack (%s)", name(result));
    return -1;
  }
  *out_len = result;
  return 0;
}

int hs_decompress(int kind, const uint8_t *in, size_t in_len, uint8_t *out, size_t out_capacity, size_t *out_len,
                  char *error, size_t error_capacity) {
  switch (kind) {
  case HS_COMPRESSION_XZ: return unpack_xz(in, in_len, out, out_capacity, out_len, error, error_capacity);
  case HS_COMPRESSION_GZIP: return unpack_gzip(in, in_len, out, out_capacity, out_len, error, error_capacity);
  case HS_COMPRESSION_ZSTD: return unpack_zstd(in, in_len, out, out_capacity, out_len, error, error_capacity);
  default: fail(error, error_capacity, "unknown compression %d", kind); return -1;
  }
}
