#!/usr/bin/env bash
# Bounded fuzzing of linkgate with cargo-fuzz (libFuzzer). Run from the repo root:
#
#   FUZZ_SECONDS=20 bash .ci/fuzz.sh
#
# Environment:
#   FUZZ_SECONDS    seconds of fuzzing per target (default 20)
#   FUZZ_TARGETS    space-separated targets (default: all five)
#   FUZZ_SANITIZER  none (default) or address
#
# Sanitizer: the default is `-s none`, which works on stable Rust as is (cargo-fuzz then only
# adds stable `-C` coverage flags: `cargo fuzz build -s none -O -a`). linkgate is
# `#![forbid(unsafe_code)]`, so AddressSanitizer would add little beyond slowing the fuzzer;
# panics, assertion failures, overflows (debug assertions stay on) and timeouts are caught
# either way.
# FUZZ_SANITIZER=address builds with ASan instead; on stable that needs `-Zsanitizer`, so the
# script sets RUSTC_BOOTSTRAP=1 for it (`RUSTC_BOOTSTRAP=1 cargo fuzz build -s address -O -a`;
# checked with Rust 1.95 on x86_64 Linux).
#
# Each target runs over a temporary copy of fuzz/corpus/<target> (new inputs go there, so the
# repo corpus is not polluted) plus fuzz/corpus/<target> itself as a second, read-only dir.
# Targets are built once, then their libFuzzer binaries run directly. Crash inputs (and the
# target's log) land in fuzz/artifacts/<target>/. Exits non-zero if any target fails.
set -euo pipefail

cd "$(dirname "${BASH_SOURCE[0]}")/.."
root=$PWD

seconds=${FUZZ_SECONDS:-20}
targets=${FUZZ_TARGETS:-parse_nginx parse_csv parse_json resolve click_json}
sanitizer=${FUZZ_SANITIZER:-none}

case $sanitizer in
    none) ;;
    address) export RUSTC_BOOTSTRAP=1 ;;
    *) echo "fuzz: FUZZ_SANITIZER must be none or address, not '$sanitizer'" >&2; exit 2 ;;
esac

if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "fuzz: installing cargo-fuzz"
    cargo install cargo-fuzz --locked
fi
echo "fuzz: $(cargo fuzz --version), $(rustc --version), sanitizer=$sanitizer, ${seconds}s per target"

# Release build with debug assertions and overflow checks (-a; -O alone turns them off).
flags=(-s "$sanitizer" -O -a)

# Build every target once, up front: a build failure stops here, before any fuzzing. The binaries
# are then run directly (not via `cargo fuzz run`, which would rebuild before every target and
# turn a source edit made meanwhile into a bogus failure).
cargo fuzz build --fuzz-dir "$root/fuzz" "${flags[@]}"
host=$(rustc -vV | sed -n 's/^host: //p')
# cargo-fuzz builds into fuzz/target, or into $CARGO_TARGET_DIR when that is set.
target_dir=${CARGO_TARGET_DIR:-$root/fuzz/target}
[[ $target_dir == /* ]] || target_dir="$PWD/$target_dir"
bindir="$target_dir/$host/release"

work=$(mktemp -d "${TMPDIR:-/tmp}/linkgate-fuzz.XXXXXX")
trap 'rm -rf "$work"' EXIT

failed=()
summary=()
for t in $targets; do
    seed="$root/fuzz/corpus/$t"
    mkdir -p "$seed" "$work/$t" "$root/fuzz/artifacts/$t"
    cp -R "$seed/." "$work/$t/"
    extra=()
    if [[ $t == parse_nginx ]]; then
        extra+=("-dict=$root/fuzz/nginx.dict")
    fi
    log="$work/$t.log"
    echo "fuzz: === $t (${seconds}s) ==="
    status=0
    # libFuzzer writes new inputs to the first corpus dir only.
    "$bindir/$t" -artifact_prefix="$root/fuzz/artifacts/$t/" \
        -max_total_time="$seconds" -max_len=4096 -timeout=10 -print_final_stats=1 \
        "${extra[@]}" "$work/$t" "$seed" >"$log" 2>&1 || status=$?
    # Executions: `Done N runs` on a clean finish; the final stats or the last `#N` status line
    # otherwise (a crash).
    runs=$(sed -n 's/^Done \([0-9]*\) runs.*/\1/p' "$log" | tail -n1)
    [[ -n $runs ]] || runs=$(sed -n 's/^stat::number_of_executed_units: *\([0-9]*\).*/\1/p' "$log" | tail -n1)
    [[ -n $runs ]] || runs=$(sed -n 's/^#\([0-9][0-9]*\)[[:space:]].*/\1/p' "$log" | tail -n1)
    [[ -n $runs ]] || runs='?'
    if [[ $status -eq 0 ]]; then
        line="$t: ok, $runs runs"
        echo "fuzz: $line"
    else
        line="$t: FAILED (exit $status) after $runs runs"
        cp "$log" "$root/fuzz/artifacts/$t/fuzz.log"
        echo "fuzz: $line; full log in fuzz/artifacts/$t/fuzz.log"
        # The panic message, then libFuzzer's report (input bytes, artifact) up to the repro command.
        grep -A3 'panicked at' "$log" | head -n 20 || true
        sed -n '/ERROR: libFuzzer\|ERROR: AddressSanitizer/,$p' "$log" | grep -v '^ *[0-9]*: \|^ *at ' || true
        for a in $(sed -n "s/.*Test unit written to \(.*\)$/\1/p" "$log"); do
            echo "fuzz: input $a (hex):"
            od -An -tx1 -v "$a" | head -n 20
            echo "fuzz: reproduce: cargo fuzz run ${flags[*]} $t ${a#"$root"/}"
        done
        failed+=("$t")
    fi
    summary+=("$line")
done

echo "fuzz: ===== summary ====="
printf 'fuzz: %s\n' "${summary[@]}"
if ((${#failed[@]})); then
    echo "fuzz: ${#failed[@]} target(s) failed: ${failed[*]} (inputs in fuzz/artifacts/)" >&2
    exit 1
fi
echo "fuzz: all ${#summary[@]} targets ran without a crash"
