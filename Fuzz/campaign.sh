#!/bin/sh
# A long fuzzing campaign beside other work: each target named runs -runs=$RUNS in one
# process at the lowest CPU priority (so builds and tests are not slowed), then what
# added coverage is merged back into Fuzz/corpus/<target>. Usage:
#   Fuzz/campaign.sh csv jsonl            # MAX_LEN, RUNS, TIMEOUT from the environment
# Log lines go to build/fuzz/campaign.log, libFuzzer's output to build/fuzz/<target>.log.
# Run `make fuzz FUZZ_SECONDS=1` (or the build line of the Makefile's fuzz target) first.
set -u
BIN=${BIN:-.build-fuzz/release/tokenmill-fuzz}
RUNS=${RUNS:-10000000}
MAX_LEN=${MAX_LEN:-65536}
TIMEOUT=${TIMEOUT:-60}
mkdir -p build/fuzz
for t in "$@"; do
  mkdir -p build/fuzz/$t build/fuzz/crashes/$t
  cp -n Fuzz/corpus/$t/* build/fuzz/$t/ 2>/dev/null
  echo "$(date -u +%FT%TZ) start $t runs=$RUNS max_len=$MAX_LEN" >>build/fuzz/campaign.log
  TOKENMILL_FUZZ_TARGET=$t ASAN_OPTIONS=detect_leaks=1 nice -n 19 $BIN build/fuzz/$t \
    -runs=$RUNS -max_len=$MAX_LEN -timeout=$TIMEOUT -rss_limit_mb=2048 \
    -artifact_prefix=build/fuzz/crashes/$t/ -print_final_stats=1 2>build/fuzz/$t.log
  status=$?
  echo "$(date -u +%FT%TZ) end $t status=$status $(grep -E '^#[0-9]+' build/fuzz/$t.log | tail -1)" >>build/fuzz/campaign.log
  grep -E 'stat::' build/fuzz/$t.log >>build/fuzz/campaign.log
  TOKENMILL_FUZZ_TARGET=$t nice -n 19 $BIN -merge=1 Fuzz/corpus/$t build/fuzz/$t >/dev/null 2>&1
done
