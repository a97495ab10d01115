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
  local file=$BENCH_DIR/page-cache-probe piece_mib=256 pieces=8 piece t0 costs=()
  local blocks=$((piece_mib * 128)) # 8 KiB blocks, PostgreSQL's write size
  sync
  for ((piece = 0; piece < pieces; piece++)); do
    t0=$(now)
    if ! dd if=/dev/zero of="$file" bs=8k count="$blocks" seek=$((piece * blocks)) conv=notrunc status=none; then
      rm -f "$file"
      note "page cache probe: writing $file failed"
      return 1
    fi
    costs+=("$(awk -v a="$t0" -v b="$(now)" -v mib="$piece_mib" 'BEGIN { printf "%.3f", (b - a) * 1000 / mib }')")
  done
  rm -f "$file"
  sync
  local IFS=,
  record "{\"w\":\"page_cache\",\"piece_mib\":$piece_mib,\"ms_per_mib\":[${costs[*]}]}"
}
