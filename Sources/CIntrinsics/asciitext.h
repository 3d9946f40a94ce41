// ASCII text kernels 16 bytes a step (SSSE3/AVX2 encodings, x86-64-v3 like the rest of
// the build): the exact-dedup key's and the shingler's folding of ASCII runs. Both keep
// some bytes (lowercased) and turn runs of whitespace into one separating space; a
// scalar loop of theirs did one table load and ~8 operations a byte with a chain from
// each byte to the next (9% of a build between them). Here a block is classified with two
// nibble-table lookups, the separating spaces come from one addition over the block's
// masks, and the kept bytes and spaces are packed with one shuffle a half-block. Each
// function stops before the first block holding a byte >= 0x80 or when fewer than 16
// bytes remain, and returns the bytes it consumed; the caller's scalar loop (the
// definition these must equal, tested against it on random text) goes on from there with
// the state passed back. (SwiftPM does not rebuild the Swift files that import this
// header when only the header changes: touch them, or `swift build` keeps the old code.)
#ifndef TM_ASCIITEXT_H
#define TM_ASCIITEXT_H
#include <stdint.h>
#include <stddef.h>

#if defined(__x86_64__)
#include <immintrin.h>

// 0xFF in each lane whose byte (< 0x80) is in the set `lut` describes: byte b is in it when
// bit (b >> 4) of lut[b & 15] is set.
__attribute__((target("avx2")))
static inline __m128i tm_ascii_in_set16(__m128i v, __m128i lut) {
    const __m128i low4 = _mm_set1_epi8(0x0F);
    const __m128i bitOfHigh = _mm_setr_epi8(1, 2, 4, 8, 16, 32, 64, (char)128, 0, 0, 0, 0, 0, 0, 0, 0);
    __m128i lo = _mm_and_si128(v, low4);
    __m128i hi = _mm_and_si128(_mm_srli_epi16(v, 4), low4);
    __m128i hit = _mm_and_si128(_mm_shuffle_epi8(lut, lo), _mm_shuffle_epi8(bitOfHigh, hi));
    return _mm_xor_si128(_mm_cmpeq_epi8(hit, _mm_setzero_si128()), _mm_set1_epi8((char)0xFF));
}

// `v` with ASCII capitals lowercased, and ' ' in the lanes not in `keep`.
__attribute__((target("avx2")))
static inline __m128i tm_ascii_fold16(__m128i v, __m128i keep) {
    __m128i upper = _mm_and_si128(_mm_cmpgt_epi8(v, _mm_set1_epi8('A' - 1)), _mm_cmpgt_epi8(_mm_set1_epi8('Z' + 1), v));
    __m128i lower = _mm_or_si128(v, _mm_and_si128(upper, _mm_set1_epi8(0x20)));
    return _mm_blendv_epi8(_mm_set1_epi8(' '), lower, keep);
}

// The lanes of `t` whose bit is set in `mask` (16 bits), in order, written to `out` (which
// takes 16 bytes whatever the count); returns how many. `pack[m]`: the positions of the set
// bits of the byte m, in order, in the bytes of a word (the rest 0x80).
__attribute__((target("avx2,popcnt")))
static inline size_t tm_pack16(__m128i t, unsigned mask, uint8_t *out, const uint64_t *pack) {
    unsigned lo = mask & 0xFFu, hi = (mask >> 8) & 0xFFu;
    __m128i il = _mm_cvtsi64_si128((long long)pack[lo]);
    __m128i ih = _mm_cvtsi64_si128((long long)(pack[hi] + 0x0808080808080808ull));
    size_t nl = (size_t)__builtin_popcount(lo);
    _mm_storel_epi64((__m128i *)out, _mm_shuffle_epi8(t, il));
    _mm_storel_epi64((__m128i *)(out + nl), _mm_shuffle_epi8(t, ih));
    return nl + (size_t)__builtin_popcount(hi);
}

// The exact-dedup key of an ASCII run (ExactDedup.withFastKey's loop): bytes in `keepLut`
// kept and lowercased, bytes in `spaceLut` whitespace, the rest dropped; a space goes
// before a kept byte when whitespace came after the previous kept byte (`*owe`) and
// something was kept before (`*started`). The kept bytes at which a space is owed are the
// carries of (not kept) + (whitespace) + owe: each run of bytes not kept that holds a
// whitespace byte carries one into the kept byte after it, and out of the block when it
// is the last run. The space is packed into the lane before that byte, which is never a
// kept one. `out` must have 16 bytes of room past the key's end.
__attribute__((target("avx2,popcnt")))
static inline size_t tm_exact_key_ascii(const uint8_t *in, size_t n, uint8_t *out, size_t *outCount,
                                        unsigned *owe, unsigned *started,
                                        const uint8_t *keepLut, const uint8_t *spaceLut, const uint64_t *pack) {
    const __m128i lk = _mm_loadu_si128((const __m128i *)keepLut), ls = _mm_loadu_si128((const __m128i *)spaceLut);
    size_t i = 0, fo = *outCount;
    unsigned ow = *owe, st = *started;
    for (; i + 16 <= n; i += 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(in + i));
        if (_mm_movemask_epi8(v) != 0) break;
        __m128i keep = tm_ascii_in_set16(v, lk);
        unsigned K = (unsigned)_mm_movemask_epi8(keep);
        unsigned S = (unsigned)_mm_movemask_epi8(tm_ascii_in_set16(v, ls));
        // Whitespace before the first kept byte of a text owes nothing.
        unsigned first = K & (0u - K);
        if (!st) S &= ~(first | (first - 1u));
        unsigned sum = (~K & 0xFFFFu) + S + ow;
        unsigned lead = sum & K;
        ow = (sum >> 16) & 1u;
        st |= (K != 0);
        out[fo] = ' ';
        fo += lead & 1u;
        fo += tm_pack16(tm_ascii_fold16(v, keep), K | (lead >> 1), out + fo, pack);
    }
    *outCount = fo; *owe = ow; *started = st;
    return i;
}

// The shingler's word mode over ASCII text (Shingler.prepare's loop): bytes that are not
// ASCII whitespace are kept, lowercased; words are joined by one space; `starts` gets each
// word's first byte's offset in `out`. `*inWord`: the byte before the block was kept;
// `*started`: a word was written. `out` must have 16 bytes of room past the text's end.
__attribute__((target("avx2,popcnt,bmi")))
static inline size_t tm_shingle_words_ascii(const uint8_t *in, size_t n, uint8_t *out, size_t *outCount,
                                            int32_t *starts, size_t *startCount, unsigned *inWord, unsigned *started,
                                            const uint8_t *spaceLut, const uint64_t *pack) {
    const __m128i ls = _mm_loadu_si128((const __m128i *)spaceLut);
    size_t i = 0, fo = *outCount, so = *startCount;
    unsigned word = *inWord, st = *started;
    for (; i + 16 <= n; i += 16) {
        __m128i v = _mm_loadu_si128((const __m128i *)(in + i));
        if (_mm_movemask_epi8(v) != 0) break;
        __m128i space = tm_ascii_in_set16(v, ls);
        unsigned K = ~(unsigned)_mm_movemask_epi8(space) & 0xFFFFu;
        unsigned begins = K & ~((K << 1) | word);
        // Every word start but a text's first has a space before it.
        unsigned lead = st ? begins : (begins & (begins - 1u));
        unsigned packed = K | (lead >> 1);
        out[fo] = ' ';
        fo += lead & 1u;
        for (unsigned b = begins; b != 0; b &= b - 1u) {
            unsigned below = (1u << __builtin_ctz(b)) - 1u;
            starts[so++] = (int32_t)(fo + (size_t)__builtin_popcount(packed & below));
        }
        fo += tm_pack16(tm_ascii_fold16(v, _mm_xor_si128(space, _mm_set1_epi8((char)0xFF))), packed, out + fo, pack);
        word = (K >> 15) & 1u;
        st |= (K != 0);
    }
    *outCount = fo; *startCount = so; *inWord = word; *started = st;
    return i;
}
// How many bytes of s[0..<n] equal `b`, 32 a step (an input block's newlines: a byte loop
// took 3.5% of a one-thread build).
__attribute__((target("avx2,popcnt")))
static inline size_t tm_count_byte(const uint8_t *s, size_t n, uint8_t b) {
    const __m256i needle = _mm256_set1_epi8((char)b);
    size_t i = 0, count = 0;
    for (; i + 32 <= n; i += 32) {
        __m256i v = _mm256_loadu_si256((const __m256i *)(s + i));
        count += (size_t)__builtin_popcount((unsigned)_mm256_movemask_epi8(_mm256_cmpeq_epi8(v, needle)));
    }
    for (; i < n; i++) count += s[i] == b;
    return count;
}
// The index of the first byte at or after `from` that normalization's control pass must
// look at — below 0x20 other than \n and \t, 0x7F, or 0xC2 (the lead byte of the C1
// controls) — or n when there is none; 32 bytes a step.
__attribute__((target("avx2")))
static inline size_t tm_next_control(const uint8_t *s, size_t n, size_t from) {
    const __m256i x1f = _mm256_set1_epi8(0x1F), nl = _mm256_set1_epi8(0x0A), tab = _mm256_set1_epi8(0x09);
    const __m256i del = _mm256_set1_epi8(0x7F), c2 = _mm256_set1_epi8((char)0xC2);
    size_t i = from;
    for (; i + 32 <= n; i += 32) {
        __m256i v = _mm256_loadu_si256((const __m256i *)(s + i));
        __m256i below = _mm256_cmpeq_epi8(_mm256_max_epu8(v, x1f), x1f);
        below = _mm256_andnot_si256(_mm256_or_si256(_mm256_cmpeq_epi8(v, nl), _mm256_cmpeq_epi8(v, tab)), below);
        __m256i hit = _mm256_or_si256(below, _mm256_or_si256(_mm256_cmpeq_epi8(v, del), _mm256_cmpeq_epi8(v, c2)));
        unsigned m = (unsigned)_mm256_movemask_epi8(hit);
        if (m) return i + (size_t)__builtin_ctz(m);
    }
    for (; i < n; i++) {
        uint8_t c = s[i];
        if ((c < 0x20 && c != 0x0A && c != 0x09) || c == 0x7F || c == 0xC2) return i;
    }
    return n;
}
#else
static inline size_t tm_next_control(const uint8_t *s, size_t n, size_t from) {
    for (size_t i = from; i < n; i++) {
        uint8_t c = s[i];
        if ((c < 0x20 && c != 0x0A && c != 0x09) || c == 0x7F || c == 0xC2) return i;
    }
    return n;
}
static inline size_t tm_count_byte(const uint8_t *s, size_t n, uint8_t b) {
    size_t count = 0;
    for (size_t i = 0; i < n; i++) count += s[i] == b;
    return count;
}
static inline size_t tm_exact_key_ascii(const uint8_t *in, size_t n, uint8_t *out, size_t *outCount,
                                        unsigned *owe, unsigned *started,
                                        const uint8_t *keepLut, const uint8_t *spaceLut, const uint64_t *pack) { return 0; }
static inline size_t tm_shingle_words_ascii(const uint8_t *in, size_t n, uint8_t *out, size_t *outCount,
                                            int32_t *starts, size_t *startCount, unsigned *inWord, unsigned *started,
                                            const uint8_t *spaceLut, const uint64_t *pack) { return 0; }
#endif

#endif
