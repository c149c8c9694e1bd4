#!/bin/sh
# Runs one libFuzzer harness for `make fuzz`: first every input of
# fuzz/regressions/NAME (inputs that once failed; each must pass now), then
# SECONDS of fuzzing from the seed corpus fuzz/corpus/NAME (new inputs go to
# BUILD/corpus/NAME, never into the source tree). Any finding fails; the input
# that caused it is left in BUILD/findings/NAME/, the log in BUILD/NAME.log.
# SEED (default 1) fixes libFuzzer's random choices, so that `make test` fuzzes the
# same inputs on every run (up to how many fit in SECONDS); 0 picks a new seed each
# time, for exploring (`make fuzz FUZZ_SEED=0 FUZZ_SECONDS=600`).
#
#     fuzz/run.sh BUILD NAME SECONDS [SEED]
set -u
build=$1 name=$2 seconds=$3 seed=${4:-1}
bin=$build/$name log=$build/$name.log
mkdir -p "$build/corpus/$name" "$build/findings/$name"
if [ -n "$(ls "fuzz/regressions/$name" 2>/dev/null)" ]; then
    if ! "$bin" fuzz/regressions/"$name"/* > "$log" 2>&1; then
        tail -40 "$log"
        echo "fuzz: $name fails on an input of fuzz/regressions/$name (log: $log)"
        exit 1
    fi
fi
if ! "$bin" -seed="$seed" -max_total_time="$seconds" -timeout=20 -rss_limit_mb=4096 -max_len=4096 \
        -artifact_prefix="$build/findings/$name/" -print_final_stats=1 \
        "$build/corpus/$name" "fuzz/corpus/$name" > "$log" 2>&1; then
    tail -60 "$log"
    echo "fuzz: $name found a problem; the input is in $build/findings/$name/ (log: $log)"
    exit 1
fi
runs=$(grep -h '^stat::number_of_executed_units' "$log" | awk '{print $2}')
echo "fuzz: $name clean, $runs inputs in $seconds s"
