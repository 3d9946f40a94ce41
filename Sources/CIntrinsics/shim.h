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
#else
#include <stdint.h>
static inline uint32_t tm_letters16(const uint8_t *p) {
    uint32_t m = 0;
    for (int k = 0; k < 16; k++) {
        if ((uint8_t)(p[k] - 0x41) < 26) m |= 1u << k;
        if ((uint8_t)(p[k] - 0x61) < 26) m |= 1u << (16 + k);
    }
    return m;
}
static inline uint32_t tm_pair_probe8(const uint64_t *line, uint64_t key) {
    for (int k = 0; k < 8; k++) {
        if (line[k] == 0) return 0;
        if (line[k] >> 21 == key) return (uint32_t)(line[k] & 0x1FFFFF);
    }
    return 0xFFFFFFFFu;
}
#endif

#endif
