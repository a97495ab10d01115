# shellcheck shell=bash
# The machine's cost of writing into new page cache (source it after env.sh).
#
#   page_cache_probe    writes a 2 GiB file through the page cache in 256 MiB
#                       pieces and records the milliseconds per MiB of each
#
# A recopy's cost on the target is mostly new page cache: its heap, its WAL
# and its index, 1.36 GB for the 5M backlog (640, 609 and 107 MB) and 0.27 GB
# for the 1M one. A machine that charges more per MiB past some amount of new
# memory bends the catch-up line there, under pgtandem and the bare COPY
# alike. The Firecracker VMs we bench on do: with free page reporting, memory
# the guest frees goes back to the host, and a page of it faults on the host
# at its first touch; only the memory freed lately and not yet handed back
# (about 1 GiB here) is cheap. The probe runs once, after the timed
# workloads, so that the memory it takes and frees falls on none of them.
page_cache_probe() {
  local file=$BENCH_DIR/page-cache-probe piece t0 costs=()
  sync
  for ((piece = 0; piece < 8; piece++)); do
    t0=$(now)
    if ! dd if=/dev/zero of="$file" bs=8k count=32768 seek=$((piece * 32768)) conv=notrunc status=none; then
      rm -f "$file"
      note "page cache probe: writing $file failed"
      return 1
    fi
    costs+=("$(awk -v a="$t0" -v b="$(now)" 'BEGIN { printf "%.3f", (b - a) * 1000 / 256 }')")
  done
  rm -f "$file"
  sync
  local IFS=,
  record "{\"w\":\"page_cache\",\"piece_mib\":256,\"ms_per_mib\":[${costs[*]}]}"
}
