#!/usr/bin/env bash
# Side-by-side numbers on one dbg trace, in one run: dbg:trace_client counting it (its own timer),
# beamtrace import (events/s), capture bytes/event vs lz4 -1, gzip -6, zstd -3 of the raw file,
# zstd -19 and xz -6, lz4 -1's own time, and a full scan (beamtrace info). Usage: compare.sh TRACE BEAMTRACE_BINARY
set -euo pipefail
trace=$1; bt=$2
work=$(mktemp -d); trap 'rm -rf "$work"' EXIT
cat "$trace" > /dev/null   # page cache, for every contender alike
cat > "$work/bt_count.erl" <<'ERL'
-module(bt_count).
-export([count/1]).
count(File) ->
    Self = self(), T0 = erlang:monotonic_time(nanosecond),
    dbg:trace_client(file, File, {fun(end_of_trace, C) -> Self ! {done, C}, C; (_, C) -> C + 1 end, 0}),
    receive {done, C} ->
        T = erlang:monotonic_time(nanosecond) - T0,
        io:format("~p ~p~n", [C, T])
    end.
ERL
erlc -o "$work" "$work/bt_count.erl"
read -r events client_ns < <(erl -noshell -pa "$work" -eval "bt_count:count(\"$trace\"), halt().")
t0=$(date +%s%N); "$bt" import "$trace" -o "$work/cap" > /dev/null; t1=$(date +%s%N)
import_ns=$((t1 - t0))
t2=$(date +%s%N); "$bt" info "$work/cap" > /dev/null; t3=$(date +%s%N)
scan_ns=$((t3 - t2))
cap=$(du -sb "$work/cap" | cut -f1)
raw=$(stat -c %s "$trace")
t4=$(date +%s%N); l=$(lz4 -1 -c "$trace" | wc -c); t5=$(date +%s%N)
lz4_ns=$((t5 - t4))
g=$(gzip -6 -c "$trace" | wc -c); z=$(zstd -3 -c "$trace" | wc -c)
z19=$(zstd -19 -T1 -c "$trace" | wc -c); x=$(xz -6 -T1 -c "$trace" | wc -c)
awk -v e="$events" -v c="$client_ns" -v i="$import_ns" -v s="$scan_ns" -v cap="$cap" -v raw="$raw" \
    -v l="$l" -v g="$g" -v z="$z" -v z19="$z19" -v x="$x" -v lt="$lz4_ns" 'BEGIN {
  printf "events                  %d\n", e
  printf "dbg:trace_client        %.0f events/s\n", e / (c / 1e9)
  printf "beamtrace import        %.0f events/s (%.2fx trace_client; whole process, incl. startup)\n", e / (i / 1e9), (e / (i / 1e9)) / (e / (c / 1e9))
  printf "beamtrace info (scan)   %.0f events/s (whole process)\n", e / (s / 1e9)
  printf "lz4 -1                  %.3f s; beamtrace import %.2fx its time\n", lt / 1e9, i / lt
  printf "bytes/event raw %.1f  capture %.2f  lz4 -1 %.2f  gzip -6 %.2f  zstd -3 %.2f  zstd -19 %.2f  xz -6 %.2f\n", raw/e, cap/e, l/e, g/e, z/e, z19/e, x/e
}'
