// Compiler intrinsics and system calls Swift has no spelling for. Header-only: static
// inline functions that the Swift compiler inlines into its callers like its own code.
#ifndef TM_INTRINSICS_H
#define TM_INTRINSICS_H

// A software prefetch of the cache line holding `p` (prefetcht0 on x86-64). Unlike a load
// whose value goes unused, it retires without waiting for the line, so a loop can start
// the memory fetches of later iterations while it computes the current one.
static inline void tm_prefetch(const void *p) { __builtin_prefetch(p, 0, 3); }

// Starts writeback of a file range without waiting: Linux's sync_file_range with
// SYNC_FILE_RANGE_WRITE (2). Swift's Glibc module does not export it (glibc declares it
// only under _GNU_SOURCE), so it is called through syscall(2). A hint: callers may ignore
// the result.
// glibc's malloc: keep freed memory instead of handing it back to the kernel at once.
// A build and an export allocate and free tens of MB per unit of work (pages, records,
// chunks); with the defaults, blocks over 128 KB are mapped and unmapped each time and
// the heap's top is trimmed, so every unit pays page faults and zero-filling for memory
// it just freed. Returns 0 where it cannot be done (another libc).
#if defined(__linux__)
#include <features.h>
#endif
#if defined(__GLIBC__)
#include <malloc.h>
static inline int tm_keep_freed_memory(int mmapThreshold, int trimThreshold) {
    return mallopt(M_MMAP_THRESHOLD, mmapThreshold) && mallopt(M_TRIM_THRESHOLD, trimThreshold);
}
#else
static inline int tm_keep_freed_memory(int mmapThreshold, int trimThreshold) { return 0; }
#endif

#ifdef __linux__
#include <sys/syscall.h>
#include <unistd.h>
static inline int tm_start_writeback(int fd, long long offset, long long count) {
    return (int)syscall(SYS_sync_file_range, fd, offset, count, 2u);
}
// Waits until a range is on disk (WAIT_BEFORE | WRITE | WAIT_AFTER = 7), then drops its
// pages from the page cache (POSIX_FADV_DONTNEED = 4): write-behind with drop-behind.
static inline int tm_drop_written(int fd, long long offset, long long count) {
    int r = (int)syscall(SYS_sync_file_range, fd, offset, count, 7u);
    if (r != 0) return r;
    return (int)syscall(SYS_fadvise64, fd, offset, count, 4);
}
#else
static inline int tm_start_writeback(int fd, long long offset, long long count) { return 0; }
static inline int tm_drop_written(int fd, long long offset, long long count) { return 0; }
#endif

// UTF-8 validation 32 bytes a step (AVX2), after Keiser and Lemire, "Validating UTF-8 in
// less than one instruction per byte" (2021): each byte pair is classified by three
// 16-entry table lookups (the previous byte's high and low nibble, this byte's high
// nibble) whose AND is non-zero exactly where the pair breaks a rule (too short, too long,
// overlong, surrogate, past U+10FFFF, two continuations); a continuation that the byte two
// or three back requires is matched against the "two continuations" flag. Returns 1 when
// `s[0..<n]` is well-formed, 0 when not, -1 where AVX2 is not compiled in (the caller's
// scalar loop decides).
#if defined(__x86_64__)
#include <immintrin.h>
#include <stdint.h>
#include <stddef.h>
#include <string.h>

#define TM_TABLE16(a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p) \
    _mm256_setr_epi8(a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p,a,b,c,d,e,f,g,h,i,j,k,l,m,n,o,p)
// The last N bytes of `prev` followed by the first 32 - N of `in`.
#define TM_PREV(in, prev, N) _mm256_alignr_epi8(in, _mm256_permute2x128_si256(prev, in, 0x21), 16 - (N))

__attribute__((target("avx2")))
static inline __m256i tm_utf8_block_errors(__m256i in, __m256i prev) {
    const __m256i low4 = _mm256_set1_epi8(0x0F);
    // Flags: 0x01 too short, 0x02 too long, 0x04 overlong 3, 0x08 too large, 0x10
    // surrogate, 0x20 overlong 2, 0x40 too large (1000____) / overlong 4, 0x80 two
    // continuations.
    const __m256i byte1High = TM_TABLE16(0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02, 0x02,
                                         (char)0x80, (char)0x80, (char)0x80, (char)0x80, 0x21, 0x01, 0x15, 0x49);
    const __m256i byte1Low = TM_TABLE16((char)0xE7, (char)0xA3, (char)0x83, (char)0x83, (char)0x8B, (char)0xCB, (char)0xCB, (char)0xCB,
                                        (char)0xCB, (char)0xCB, (char)0xCB, (char)0xCB, (char)0xCB, (char)0xDB, (char)0xCB, (char)0xCB);
    const __m256i byte2High = TM_TABLE16(0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01, 0x01,
                                         (char)0xE6, (char)0xAE, (char)0xBA, (char)0xBA, 0x01, 0x01, 0x01, 0x01);
    __m256i prev1 = TM_PREV(in, prev, 1);
    __m256i sc = _mm256_and_si256(
        _mm256_and_si256(_mm256_shuffle_epi8(byte1High, _mm256_and_si256(_mm256_srli_epi16(prev1, 4), low4)),
                         _mm256_shuffle_epi8(byte1Low, _mm256_and_si256(prev1, low4))),
        _mm256_shuffle_epi8(byte2High, _mm256_and_si256(_mm256_srli_epi16(in, 4), low4)));
    __m256i prev2 = TM_PREV(in, prev, 2), prev3 = TM_PREV(in, prev, 3);
    // 0x80 where the byte two back is a lead of 3+ bytes or three back a lead of 4.
    __m256i must23 = _mm256_or_si256(_mm256_subs_epu8(prev2, _mm256_set1_epi8(0x60)),
                                     _mm256_subs_epu8(prev3, _mm256_set1_epi8(0x70)));
    return _mm256_xor_si256(_mm256_and_si256(must23, _mm256_set1_epi8((char)0x80)), sc);
}

// Non-zero where the block ends inside a sequence (a lead byte among its last three
// bytes needs bytes past it).
__attribute__((target("avx2")))
static inline __m256i tm_utf8_incomplete(__m256i in) {
    const __m256i max = _mm256_setr_epi8(-1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
                                         -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1, -1,
                                         (char)0xEF, (char)0xDF, (char)0xBF);
    return _mm256_subs_epu8(in, max);
}

__attribute__((target("avx2")))
static inline int tm_utf8_valid(const uint8_t *s, size_t n) {
    __m256i error = _mm256_setzero_si256(), prev = _mm256_setzero_si256(), incomplete = _mm256_setzero_si256();
    size_t i = 0;
    for (; i + 32 <= n; i += 32) {
        __m256i in = _mm256_loadu_si256((const __m256i *)(s + i));
        if (_mm256_movemask_epi8(in) == 0) {
            error = _mm256_or_si256(error, incomplete);
            incomplete = _mm256_setzero_si256();
        } else {
            error = _mm256_or_si256(error, tm_utf8_block_errors(in, prev));
            incomplete = tm_utf8_incomplete(in);
        }
        prev = in;
    }
    if (i < n) {
        // The tail in a block of zeros (ASCII): a sequence cut by the end of the input is
        // then "too short".
        uint8_t tail[32] = {0};
        memcpy(tail, s + i, n - i);
        __m256i in = _mm256_loadu_si256((const __m256i *)tail);
        error = _mm256_or_si256(error, tm_utf8_block_errors(in, prev));
        incomplete = _mm256_setzero_si256();
    }
    error = _mm256_or_si256(error, incomplete);
    return _mm256_testz_si256(error, error);
}
// The all-ASCII 32-byte blocks at the start of `s[0..<n]`, 32 bytes a step: adds their
// bytes that are not ASCII whitespace (space, \t \n \v \f \r) to `*nonSpace` and returns
// how many bytes they hold (a multiple of 32; it stops before the first block with a byte
// >= 0x80). The shingler's script count of a text with some non-ASCII; Swift's SIMD32
// comparisons with scalar operands compiled to a loop of byte stores here.
__attribute__((target("avx2,popcnt")))
static inline size_t tm_ascii_blocks_nonspace(const uint8_t *s, size_t n, size_t *nonSpace) {
    const __m256i space = _mm256_set1_epi8(0x20), tab = _mm256_set1_epi8(0x09), four = _mm256_set1_epi8(4);
    size_t i = 0, count = 0;
    for (; i + 32 <= n; i += 32) {
        __m256i v = _mm256_loadu_si256((const __m256i *)(s + i));
        if (_mm256_movemask_epi8(v) != 0) break;
        __m256i t = _mm256_sub_epi8(v, tab);
        __m256i ws = _mm256_or_si256(_mm256_cmpeq_epi8(v, space),
                                     _mm256_cmpeq_epi8(_mm256_min_epu8(t, four), t));
        count += 32 - (size_t)__builtin_popcount((unsigned)_mm256_movemask_epi8(ws));
    }
    *nonSpace += count;
    return i;
}
// The offset of the first quote, backslash or control byte (< 0x20) in `s[0..<n]` (n when
// there is none), 32 bytes a step; `*high` gets the OR of the bytes before it (bit 7 set
// when one of them is not ASCII). A JSON string's run of plain text. Where 32 bytes or
// more remain, the last block is the 32 bytes ending at `n` (overlapping bytes already
// passed, which are neither special nor change the OR), so no byte loop is needed; only a
// string shorter than 32 bytes goes byte by byte.
__attribute__((target("avx2,bmi")))
static inline size_t tm_json_plain_run(const uint8_t *s, size_t n, uint8_t *high) {
    const __m256i quote = _mm256_set1_epi8(0x22), slash = _mm256_set1_epi8(0x5C), ctrl = _mm256_set1_epi8(0x1F);
    __m256i seen = _mm256_setzero_si256();
    if (n >= 32) {
        size_t i = 0;
        for (;;) {
            if (i + 32 > n) i = n - 32;
            __m256i v = _mm256_loadu_si256((const __m256i *)(s + i));
            __m256i special = _mm256_or_si256(_mm256_or_si256(_mm256_cmpeq_epi8(v, quote), _mm256_cmpeq_epi8(v, slash)),
                                              _mm256_cmpeq_epi8(_mm256_min_epu8(v, ctrl), v));
            unsigned m = (unsigned)_mm256_movemask_epi8(special);
            if (m != 0) {
                unsigned at = (unsigned)__builtin_ctz(m);
                // The bytes before the special one: lanes below `at`.
                unsigned before = (unsigned)_mm256_movemask_epi8(v) & ((1u << at) - 1u);
                unsigned seenHigh = (unsigned)_mm256_movemask_epi8(seen);
                *high = (before | seenHigh) ? 0x80 : 0;
                return i + at;
            }
            seen = _mm256_or_si256(seen, v);
            if (i + 32 == n) break;
            i += 32;
        }
        *high = _mm256_movemask_epi8(seen) ? 0x80 : 0;
        return n;
    }
    uint8_t h = 0;
    size_t i = 0;
    for (; i < n; i++) {
        uint8_t c = s[i];
        if (c == 0x22 || c == 0x5C || c < 0x20) break;
        h |= c;
    }
    *high = h & 0x80;
    return i;
}
#else
#include <stdint.h>
#include <stddef.h>
static inline int tm_utf8_valid(const uint8_t *s, size_t n) { return -1; }
static inline size_t tm_json_plain_run(const uint8_t *s, size_t n, uint8_t *high) { *high = 0xFF; return (size_t)-1; }
static inline size_t tm_ascii_blocks_nonspace(const uint8_t *s, size_t n, size_t *nonSpace) { return 0; }
#endif

// The value of a hex digit, 0x10 for any other byte.
static const uint8_t tm_hex_values[256] = {
    ['0'] = 0, ['1'] = 1, ['2'] = 2, ['3'] = 3, ['4'] = 4, ['5'] = 5, ['6'] = 6, ['7'] = 7, ['8'] = 8, ['9'] = 9,
    ['a'] = 10, ['b'] = 11, ['c'] = 12, ['d'] = 13, ['e'] = 14, ['f'] = 15,
    ['A'] = 10, ['B'] = 11, ['C'] = 12, ['D'] = 13, ['E'] = 14, ['F'] = 15,
    // every other byte:
    [0x00 ... 0x2F] = 0x10, [0x3A ... 0x40] = 0x10, [0x47 ... 0x60] = 0x10, [0x67 ... 0xFF] = 0x10,
};

// Four hex digits at `s` as a number, or a value above 0xFFFF when one is not a digit.
static inline uint32_t tm_hex4(const uint8_t *s) {
    uint32_t a = tm_hex_values[s[0]], b = tm_hex_values[s[1]], c = tm_hex_values[s[2]], d = tm_hex_values[s[3]];
    return (a << 12 | b << 8 | c << 4 | d) | ((a | b | c | d) & 0x10) << 12;
}

// A run of `\uXXXX` escapes at `s` (`n` bytes readable) decoded into UTF-8 at `dst`, as
// JSON writers that escape every non-ASCII character (Python's json.dumps by default)
// write CJK, Cyrillic or emoji text: every escape of a character, and a surrogate pair as
// the one character it encodes. Stops at the first byte that does not begin such an
// escape, and before a bad digit or a lone surrogate (the caller's general path gives their
// error or repair). Returns the bytes written; *consumed gets the bytes read.
static inline size_t tm_json_u_escapes(const uint8_t *s, size_t n, uint8_t *dst, size_t *consumed) {
    size_t i = 0, k = 0;
    while (i + 6 <= n && s[i] == 0x5C && s[i + 1] == 0x75) {
        uint32_t v = tm_hex4(s + i + 2);
        if (v < 0x80) {
            dst[k++] = (uint8_t)v;
        } else if (v < 0x800) {
            dst[k] = (uint8_t)(0xC0 | v >> 6); dst[k + 1] = (uint8_t)(0x80 | (v & 0x3F));
            k += 2;
        } else if (v < 0xD800 || (v >= 0xE000 && v <= 0xFFFF)) {
            dst[k] = (uint8_t)(0xE0 | v >> 12); dst[k + 1] = (uint8_t)(0x80 | (v >> 6 & 0x3F)); dst[k + 2] = (uint8_t)(0x80 | (v & 0x3F));
            k += 3;
        } else if (v < 0xDC00 && i + 12 <= n && s[i + 6] == 0x5C && s[i + 7] == 0x75) {
            uint32_t low = tm_hex4(s + i + 8);
            if (low < 0xDC00 || low > 0xDFFF) break;
            uint32_t c = 0x10000 + ((v - 0xD800) << 10) + (low - 0xDC00);
            dst[k] = (uint8_t)(0xF0 | c >> 18); dst[k + 1] = (uint8_t)(0x80 | (c >> 12 & 0x3F));
            dst[k + 2] = (uint8_t)(0x80 | (c >> 6 & 0x3F)); dst[k + 3] = (uint8_t)(0x80 | (c & 0x3F));
            k += 4;
            i += 6;
        } else {
            break;   // a bad digit (v > 0xFFFF) or a lone surrogate
        }
        i += 6;
    }
    *consumed = i;
    return k;
}

// A JSON string's body decoded in one pass: from `s` (anywhere inside the body, up to
// its closing quote; `n` bytes readable) into `dst`, which has room for n + 32 bytes (whole 32-byte blocks are
// stored before the block's special byte is looked for, so a plain run is read and
// copied at once). One-letter escapes and runs of `\u` escapes (`tm_json_u_escapes`)
// are decoded in place. Returns the decoded length, with *consumed the bytes read up to
// and including the closing quote and *high nonzero when a byte >= 0x80 came from the
// input as it is (the caller then checks the whole result as UTF-8: escapes only ever
// write whole sequences, so that is the same as checking every raw run). Returns
// (size_t)-1 for anything the general decoder must take: a control byte, an unknown
// escape, a bad `\u` digit, a lone surrogate, no closing quote, or no AVX2.
#if defined(__x86_64__)
__attribute__((target("avx2,bmi")))
static inline size_t tm_json_string_decode(const uint8_t *s, size_t n, uint8_t *dst, size_t *consumed, uint8_t *high) {
    const __m256i quote = _mm256_set1_epi8(0x22), slash = _mm256_set1_epi8(0x5C), ctrl = _mm256_set1_epi8(0x1F);
    __m256i seen = _mm256_setzero_si256();
    uint8_t h = 0;
    size_t i = 0, k = 0;
    for (;;) {
        if (i + 32 <= n) {
            __m256i v = _mm256_loadu_si256((const __m256i *)(s + i));
            _mm256_storeu_si256((__m256i *)(dst + k), v);
            __m256i special = _mm256_or_si256(_mm256_or_si256(_mm256_cmpeq_epi8(v, quote), _mm256_cmpeq_epi8(v, slash)),
                                              _mm256_cmpeq_epi8(_mm256_min_epu8(v, ctrl), v));
            unsigned m = (unsigned)_mm256_movemask_epi8(special);
            if (m == 0) { seen = _mm256_or_si256(seen, v); i += 32; k += 32; continue; }
            unsigned at = (unsigned)__builtin_ctz(m);
            if ((unsigned)_mm256_movemask_epi8(v) & ((1u << at) - 1u)) h = 1;
            i += at; k += at;
        } else {
            while (i < n) {
                uint8_t c = s[i];
                if (c == 0x22 || c == 0x5C || c < 0x20) break;
                dst[k++] = c; h |= c >> 7; i++;
            }
            if (i >= n) return (size_t)-1;
        }
        uint8_t c = s[i];
        if (c == 0x22) {
            *consumed = i + 1;
            *high = h | (_mm256_movemask_epi8(seen) ? 1 : 0);
            return k;
        }
        if (c < 0x20 || i + 1 >= n) return (size_t)-1;
        uint8_t e = s[i + 1], d;
        switch (e) {
        case 'n': d = 0x0A; break;
        case '"': d = 0x22; break;
        case '\\': d = 0x5C; break;
        case 't': d = 0x09; break;
        case 'r': d = 0x0D; break;
        case '/': d = 0x2F; break;
        case 'b': d = 0x08; break;
        case 'f': d = 0x0C; break;
        case 'u': {
            size_t used = 0;
            size_t w = tm_json_u_escapes(s + i, n - i, dst + k, &used);
            if (used == 0) return (size_t)-1;
            k += w; i += used;
            continue;
        }
        default: return (size_t)-1;
        }
        dst[k++] = d;
        i += 2;
    }
}
#else
static inline size_t tm_json_string_decode(const uint8_t *s, size_t n, uint8_t *dst, size_t *consumed, uint8_t *high) {
    return (size_t)-1;
}
#endif

// The line shape JSONL writers produce for one text field, `{"KEY": "text"}` or
// `{"KEY":"text"}`, recognised in one pass at `s` (`n` bytes readable: the rest of the
// chunk): `head` is `{"KEY":` (`hn` bytes). Returns 0 for any other line (whitespace
// elsewhere, another member, a control byte in the string, an escape the one-pass decoder
// leaves, `\r\n`: the full scan takes those). Else *lineEnd is the index of the line's
// `\n` (or `n`), *high nonzero when a byte >= 0x80 came from the input as it is (the
// text's UTF-8 is then for the caller to check), and the text is [*start, *end) of the
// line itself (returns 1: no escape) or of `scratch` (returns 2: the plain part before
// the first escape copied there and the rest decoded by `tm_json_string_decode`;
// `scratch` has room for n + 32 bytes). The line's end is the closing `"}` itself, so
// no separate newline search reads the line again, and the string is scanned once.
static inline int tm_jsonl_field_line(const uint8_t *s, size_t n, const uint8_t *head, size_t hn, uint8_t *scratch,
                                      size_t *start, size_t *end, size_t *lineEnd, uint8_t *high) {
    if (n < hn + 3 || __builtin_memcmp(s, head, hn) != 0) return 0;   // `""}` at the least
    size_t i = hn;
    if (s[i] == 0x20) i++;
    if (s[i] != 0x22) return 0;
    i++;
    uint8_t h = 0;
    size_t r = tm_json_plain_run(s + i, n - i, &h);
    if (r == (size_t)-1) return 0;
    size_t q = i + r;   // the first quote, backslash or control byte (or n)
    int shape = 1;
    if (q < n && s[q] == 0x5C) {
        size_t plain = q - i, consumed = 0;
        uint8_t decodedHigh = 0;
        __builtin_memcpy(scratch, s + i, plain);
        size_t k = tm_json_string_decode(s + q, n - q, scratch + plain, &consumed, &decodedHigh);
        if (k == (size_t)-1) return 0;
        h |= decodedHigh;
        i = 0;
        r = plain + k;
        q += consumed - 1;   // the closing quote
        shape = 2;
    }
    if (q + 2 > n || s[q] != 0x22 || s[q + 1] != 0x7D) return 0;
    size_t e = q + 2;
    if (e < n && s[e] != 0x0A) return 0;
    *start = i; *end = i + r; *lineEnd = e; *high = h;
    return shape;
}

#if defined(__x86_64__)
#include <immintrin.h>
// One bucket (8 slots, one cache line) of the BPE pair table: slot `e` holds a pair whose
// key is `e >> 21` and whose priority + 1 is `e & 0x1FFFFF`. The priority + 1 of `key`
// when a slot holds it; 0 when the bucket has an empty slot and none holds it (buckets
// fill from their first slot, so an empty slot before a match cannot occur, and a key
// absent here is absent); 0xFFFFFFFF when the bucket is full without it (look on in the
// next bucket).
__attribute__((target("avx2,bmi")))
static inline uint32_t tm_pair_probe8(const uint64_t *line, uint64_t key) {
    __m256i k = _mm256_set1_epi64x((long long)key);
    __m256i a = _mm256_loadu_si256((const __m256i *)line), b = _mm256_loadu_si256((const __m256i *)(line + 4));
    unsigned lo = (unsigned)_mm256_movemask_pd(_mm256_castsi256_pd(_mm256_cmpeq_epi64(_mm256_srli_epi64(a, 21), k)));
    unsigned hi = (unsigned)_mm256_movemask_pd(_mm256_castsi256_pd(_mm256_cmpeq_epi64(_mm256_srli_epi64(b, 21), k)));
    unsigned m = lo | hi << 4;
    if (m) return (uint32_t)(line[__builtin_ctz(m)] & 0x1FFFFF);
    __m256i z = _mm256_setzero_si256();
    unsigned ea = (unsigned)_mm256_movemask_pd(_mm256_castsi256_pd(_mm256_cmpeq_epi64(a, z)));
    unsigned eb = (unsigned)_mm256_movemask_pd(_mm256_castsi256_pd(_mm256_cmpeq_epi64(b, z)));
    return (ea | eb) ? 0 : 0xFFFFFFFFu;
}

// The ASCII letters of the 16 bytes at `p`: bit k set when byte k is A-Z (low 16 bits)
// or a-z (high 16 bits). The o200k scanner's word ends (`Scan.o200kWord16`).
static inline uint32_t tm_letters16(const uint8_t *p) {
    __m128i v = _mm_loadu_si128((const __m128i *)p);
    __m128i u = _mm_sub_epi8(v, _mm_set1_epi8(0x41)), l = _mm_sub_epi8(v, _mm_set1_epi8(0x61));
    __m128i top = _mm_set1_epi8(25);
    unsigned upper = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_min_epu8(u, top), u));
    unsigned lower = (unsigned)_mm_movemask_epi8(_mm_cmpeq_epi8(_mm_min_epu8(l, top), l));
    return upper | lower << 16;
}
// The classes of 64 bytes at `p` for `tm_o200k_starts64`, one bit a byte (a byte >= 0x80
// is in none of them); returns the offset of the first byte >= 0x80, or 64 (and stops
// early, the classes unset, when that offset is below 32).
typedef struct { uint64_t upper, lower, digit, space, newline, otherSpace, apostrophe, slash, s1, r, v, e, l; } tm_classes64;
static inline uint64_t tm_mask64(__m256i a, __m256i b) {
    return (uint64_t)(uint32_t)_mm256_movemask_epi8(a) | (uint64_t)(uint32_t)_mm256_movemask_epi8(b) << 32;
}
static inline __m256i tm_in_range(__m256i x, uint8_t lo, uint8_t len) {
    __m256i d = _mm256_sub_epi8(x, _mm256_set1_epi8((char)lo));
    return _mm256_cmpeq_epi8(_mm256_min_epu8(d, _mm256_set1_epi8((char)(len - 1))), d);
}
static inline __m256i tm_is(__m256i x, uint8_t ch) { return _mm256_cmpeq_epi8(x, _mm256_set1_epi8((char)ch)); }
static inline int tm_classes64_at(const uint8_t *p, tm_classes64 *c) {
    __m256i a = _mm256_loadu_si256((const __m256i *)p), b = _mm256_loadu_si256((const __m256i *)(p + 32));
    uint64_t high = tm_mask64(a, b);
    // A byte >= 0x80 in the first half: too little known before it to be worth the rest.
    if (high & 0xFFFFFFFFu) return __builtin_ctzll(high);
    c->upper = tm_mask64(tm_in_range(a, 0x41, 26), tm_in_range(b, 0x41, 26));
    c->lower = tm_mask64(tm_in_range(a, 0x61, 26), tm_in_range(b, 0x61, 26));
    c->digit = tm_mask64(tm_in_range(a, 0x30, 10), tm_in_range(b, 0x30, 10));
    c->space = tm_mask64(tm_is(a, 0x20), tm_is(b, 0x20));
    c->newline = tm_mask64(_mm256_or_si256(tm_is(a, 0x0A), tm_is(a, 0x0D)), _mm256_or_si256(tm_is(b, 0x0A), tm_is(b, 0x0D)));
    c->otherSpace = tm_mask64(tm_in_range(a, 0x09, 5), tm_in_range(b, 0x09, 5)) & ~c->newline;   // \t \v \f
    c->apostrophe = tm_mask64(tm_is(a, 0x27), tm_is(b, 0x27));
    c->slash = tm_mask64(tm_is(a, 0x2F), tm_is(b, 0x2F));
    c->s1 = c->r = c->v = c->e = c->l = 0;
    return high ? __builtin_ctzll(high) : 64;
}
// The letters a contraction can hold (s t m d, r v e l, any case), asked for only when
// the window has an apostrophe after a letter.
static inline void tm_contraction_classes64(const uint8_t *p, tm_classes64 *c) {
    __m256i a = _mm256_or_si256(_mm256_loadu_si256((const __m256i *)p), _mm256_set1_epi8(0x20));
    __m256i b = _mm256_or_si256(_mm256_loadu_si256((const __m256i *)(p + 32)), _mm256_set1_epi8(0x20));
    c->s1 = tm_mask64(_mm256_or_si256(_mm256_or_si256(tm_is(a, 's'), tm_is(a, 't')), _mm256_or_si256(tm_is(a, 'm'), tm_is(a, 'd'))),
                      _mm256_or_si256(_mm256_or_si256(tm_is(b, 's'), tm_is(b, 't')), _mm256_or_si256(tm_is(b, 'm'), tm_is(b, 'd'))));
    c->r = tm_mask64(tm_is(a, 'r'), tm_is(b, 'r'));
    c->v = tm_mask64(tm_is(a, 'v'), tm_is(b, 'v'));
    c->e = tm_mask64(tm_is(a, 'e'), tm_is(b, 'e'));
    c->l = tm_mask64(tm_is(a, 'l'), tm_is(b, 'l'));
}
#else
#include <stdint.h>
#include <string.h>
static inline uint32_t tm_letters16(const uint8_t *p) {
    uint32_t m = 0;
    for (int k = 0; k < 16; k++) {
        if ((uint8_t)(p[k] - 0x41) < 26) m |= 1u << k;
        if ((uint8_t)(p[k] - 0x61) < 26) m |= 1u << (16 + k);
    }
    return m;
}
typedef struct { uint64_t upper, lower, digit, space, newline, otherSpace, apostrophe, slash, s1, r, v, e, l; } tm_classes64;
static inline int tm_classes64_at(const uint8_t *p, tm_classes64 *c) {
    int first = 64;
    memset(c, 0, sizeof *c);
    for (int k = 0; k < 64; k++) {
        uint8_t x = p[k], f = x | 0x20;
        uint64_t bit = 1ULL << k;
        if (x >= 0x80) { if (first == 64) { first = k; if (k < 32) return k; } continue; }
        if ((uint8_t)(x - 0x41) < 26) c->upper |= bit;
        if ((uint8_t)(x - 0x61) < 26) c->lower |= bit;
        if ((uint8_t)(x - 0x30) < 10) c->digit |= bit;
        if (x == 0x20) c->space |= bit;
        if (x == 0x0A || x == 0x0D) c->newline |= bit;
        if (x == 0x09 || x == 0x0B || x == 0x0C) c->otherSpace |= bit;
        if (x == 0x27) c->apostrophe |= bit;
        if (x == 0x2F) c->slash |= bit;
        if (f == 's' || f == 't' || f == 'm' || f == 'd') c->s1 |= bit;
        if (f == 'r') c->r |= bit;
        if (f == 'v') c->v |= bit;
        if (f == 'e') c->e |= bit;
        if (f == 'l') c->l |= bit;
    }
    return first;
}
static inline void tm_contraction_classes64(const uint8_t *p, tm_classes64 *c) { (void)p; (void)c; }
static inline uint32_t tm_pair_probe8(const uint64_t *line, uint64_t key) {
    for (int k = 0; k < 8; k++) {
        if (line[k] == 0) return 0;
        if (line[k] >> 21 == key) return (uint32_t)(line[k] & 0x1FFFFF);
    }
    return 0xFFFFFFFFu;
}
#endif

// The bits of `m`'s run that starts at bit `q`, through its last bit.
static inline uint64_t tm_run_from(uint64_t m, int q) {
    uint64_t rest = ~m >> q;
    int end = rest ? q + __builtin_ctzll(rest) : 64;
    return (end - q >= 64 ? ~0ULL : (1ULL << (end - q)) - 1) << q;
}

// Where the run of `m` that ends at bit k - 1 starts (k when bit k - 1 is clear).
static inline int tm_run_start_before(uint64_t m, int k) {
    if (k == 0 || !(m >> (k - 1) & 1)) return k;
    uint64_t below = k == 64 ? ~0ULL : (1ULL << k) - 1;
    uint64_t notM = ~m & below;
    return notM ? 64 - __builtin_clzll(notM) : 0;
}

// o200k_base's pre-tokenizer on 64 ASCII bytes at once. `p` is where a piece starts, and
// `len` bytes of text follow it (64, or fewer then padded with spaces to 64); bit k of
// the result is set when a piece starts at p + k, for every k whose answer the window
// decides (none at or past bytes it cannot see, or past the first byte >= 0x80, whose
// offset is stored in `*nonASCII`, 64 when there is none). The pattern's alternatives
// on ASCII text, as masks (`prev(m)`: the class of the byte before; `next(m)`: after):
// - a word: a run of letters, cut where a small letter meets a capital (`[Lu]*[Ll]+`
//   ends there), with a one-byte prefix `[^\r\n\p{L}\p{N}]` taken from before the run
//   (a space or \t\v\f always; other punctuation only when it is not part of a longer run
//   of punctuation or after a space, which take it first), and a contraction after it
//   ('s 't 'm 'd 're 've 'll in any case);
// - up to three digits, from the start of a run of digits;
// - ` ?[^\s\p{L}\p{N}]+[\r\n/]*`: a run of punctuation, the space before it, the \r, \n
//   and / right after it;
// - whitespace: a run starts a piece; the bytes after its last \r\n start another; its
//   last byte (not \r\n) starts the piece that takes it (`\s+(?!\S)` leaves it out).
static inline uint64_t tm_o200k_starts64(const uint8_t *p, int len, int *nonASCII) {
    tm_classes64 c;
    int known = tm_classes64_at(p, &c);   // the bytes before the first >= 0x80
    *nonASCII = known;
    if (known < 32) return 0;
#define PREV(m) ((m) << 1)
#define NEXT(m) ((m) >> 1)
    uint64_t letter = c.upper | c.lower, white = c.space | c.newline | c.otherSpace;
    uint64_t other = ~(letter | c.digit | white);
    // Contractions: an apostrophe after a letter, then s t m d, or re ve ll.
    uint64_t ap = c.apostrophe & PREV(letter);
    if (ap) tm_contraction_classes64(p, &c);
    uint64_t c2 = ap & NEXT(c.s1);
    uint64_t c3 = ap & ~c2 & (((NEXT(c.r) | NEXT(c.v)) & (c.e >> 2)) | (NEXT(c.l) & (c.l >> 2)));
    uint64_t inContraction = c2 | (c2 << 1) | c3 | (c3 << 1) | (c3 << 2);
    uint64_t afterContraction = (c2 << 2) | (c3 << 3);
    // An apostrophe right after a contraction (`x's's`) follows no word's letters: whether
    // it is one depends on the pieces before it. Left to the byte scanner.
    uint64_t chained = ap & PREV(inContraction);
    // `[\r\n/]*` after a run of punctuation: the \r, \n and / that follow it are its own.
    // A run of those bytes that starts with \r\n right after punctuation belongs to it
    // whole (one carry from the run's first byte through its last). In any other run, the
    // slashes are punctuation (the first one after whitespace starts a run of it), and the
    // first \r\n after a slash begins what that punctuation takes, to the run's end.
    uint64_t tail = c.newline | c.slash;
    uint64_t tailStart = tail & ~PREV(tail);
    uint64_t seeds = tailStart & PREV(other) & c.newline;
    uint64_t absorbed = ((tail + seeds) ^ tail) & tail;
    uint64_t otherRuns = c.slash ? tailStart & ~seeds : 0;   // only a slash changes them
    while (otherRuns) {
        uint64_t run = tm_run_from(tail, __builtin_ctzll(otherRuns));
        otherRuns &= otherRuns - 1;
        uint64_t slashes = c.slash & run;
        if (!slashes) continue;
        uint64_t newlines = c.newline & run & ~0ULL << __builtin_ctzll(slashes);
        if (newlines) absorbed |= run & ~0ULL << __builtin_ctzll(newlines);
    }
    uint64_t letters = letter & ~inContraction, others = other & ~inContraction & ~absorbed;
    // Words.
    uint64_t runStart = letters & ~PREV(letters);
    uint64_t camel = letters & c.upper & PREV(letters & c.lower);
    uint64_t prefix = c.space | c.otherSpace | (others & ~PREV(others) & ~PREV(c.space));
    uint64_t words = (runStart & ~PREV(prefix)) | (NEXT(runStart) & prefix);
    // Digits in threes.
    uint64_t digits = c.digit & ~PREV(c.digit), group = digits;
    while ((group = (group << 3) & c.digit & PREV(c.digit) & (c.digit << 2)) != 0) digits |= group;
    // Punctuation.
    uint64_t punctStart = others & ~PREV(others);
    uint64_t punct = (punctStart & ~PREV(c.space)) | (NEXT(punctStart) & c.space);
    // Whitespace.
    uint64_t ws = white & ~absorbed;
    uint64_t wsStart = ws & ~PREV(ws), wsLast = ws & ~NEXT(ws);
    uint64_t spaces = wsStart | (wsLast & ~c.newline);
    uint64_t afterNewline = ws & ~c.newline & PREV(c.newline & ws);
    while (afterNewline) {
        int q = __builtin_ctzll(afterNewline);
        afterNewline &= afterNewline - 1;
        if ((c.newline & tm_run_from(ws, q)) == 0) spaces |= 1ULL << q;
    }
    uint64_t starts = words | camel | afterContraction | digits | punct | spaces | 1;
    // What the window decides: the starts three bytes short of the last byte it sees (a
    // contraction looks three ahead) and before a whitespace run that reaches that byte
    // (its pieces depend on the byte after it); the last byte it sees is the window's own
    // or the one before a byte >= 0x80 (a letter, number, space or mark of another script
    // may continue the run). Where the text ends inside the window (`p` a copy padded with
    // spaces, which end every piece as the text's end does, and a trailing whitespace run
    // as one piece), everything before the end, and the end itself.
    int top;
    uint64_t endBit = 0;
    if (known == 64 && len < 64) {
        top = len;
        endBit = 1ULL << len;
    } else {
        top = known - 3;
        int runAt = tm_run_start_before(ws, known);
        if (runAt < top) top = runAt;
    }
    if (chained) {
        int q = __builtin_ctzll(chained);
        if (q < top) { top = q; endBit = 0; }
    }
    uint64_t keep = ((1ULL << top) - 1) | endBit;
#undef PREV
#undef NEXT
    return starts & keep;
}

#endif
