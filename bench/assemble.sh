#!/usr/bin/env bash
# Assembles bench/results.md from the sections the benchmarks wrote under target/bench/
# (lambda.md: the summary table of every figure with its target, the Lambda figures and the
# monthly cost; sweep.md: the sweep benchmark; pipeline.md: the pipeline's overhead; probe.md: the idle probe on an instance; slack.md: a Slack button's acknowledgement), under one header with the date and the machine.
# `make bench` runs it last, whether or not a benchmark missed its target. The header names the
# commit the figures describe; a section a benchmark did not write is a FAIL row, and a failure.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
out=${BENCH_OUT:-$root/target/bench}
cpu=$(sed -n 's/^model name[[:space:]]*: //p' /proc/cpuinfo 2>/dev/null | head -n 1)
commit=$(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)
if [ -n "$(git -C "$root" status --porcelain --untracked-files=no -- ':!bench/results.md' 2>/dev/null)" ]; then
  commit="$commit with uncommitted changes"
fi
missing=0
{
  echo "# nbfleet benchmarks (\`make bench\`)"
  echo
  echo "Run on $(date -u '+%Y-%m-%d %H:%M UTC') at commit $commit, $(uname -m), $(nproc) cores${cpu:+ ($cpu)}. Every figure below is measured by that run; the monthly cost is computed from them."
  for part in lambda sweep pipeline probe slack; do
    echo
    if [ -s "$out/$part.md" ]; then
      cat "$out/$part.md"
    else
      echo "| figure | measured | target | result |"
      echo "|---|---|---|---|"
      echo "| the $part benchmark | no results | its targets | **FAIL** |"
      echo
      echo "_The $part benchmark wrote no results in this run: see the output of \`make bench\`._"
      missing=1
    fi
  done
} >"$root/bench/results.md"
echo "bench: wrote bench/results.md" >&2
exit "$missing"
