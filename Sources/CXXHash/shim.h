// XXH_INLINE_ALL makes xxh3 static inline so Swift callers get it inlined into hot loops.
// It also renames the functions through macros Swift cannot see, hence these wrappers.
#define XXH_INLINE_ALL
#include <xxhash.h>

typedef struct { unsigned long long low64, high64; } tm_hash128;
typedef XXH3_state_t tm_xxh3_state;

static inline unsigned long long tm_xxh3_64(const void *p, size_t n, unsigned long long seed) {
    return XXH3_64bits_withSeed(p, n, seed);
}
static inline tm_hash128 tm_xxh3_128(const void *p, size_t n, unsigned long long seed) {
    XXH128_hash_t h = XXH3_128bits_withSeed(p, n, seed);
    tm_hash128 r = { h.low64, h.high64 };
    return r;
}
static inline tm_xxh3_state *tm_xxh3_create(void) {
    tm_xxh3_state *s = XXH3_createState();
    if (s) XXH3_64bits_reset(s);
    return s;
}
static inline void tm_xxh3_free(tm_xxh3_state *s) { XXH3_freeState(s); }
static inline void tm_xxh3_update(tm_xxh3_state *s, const void *p, size_t n) { XXH3_64bits_update(s, p, n); }
static inline unsigned long long tm_xxh3_digest(const tm_xxh3_state *s) { return XXH3_64bits_digest(s); }
