// Compiler intrinsics Swift has no spelling for. Header-only: static inline functions that
// the Swift compiler inlines into its callers like its own code.
#ifndef TM_INTRINSICS_H
#define TM_INTRINSICS_H

// A software prefetch of the cache line holding `p` (prefetcht0 on x86-64). Unlike a load
// whose value goes unused, it retires without waiting for the line, so a loop can start
// the memory fetches of later iterations while it computes the current one.
static inline void tm_prefetch(const void *p) { __builtin_prefetch(p, 0, 3); }

#endif
