#!/usr/bin/perl
# Turns bench/run's raw measurements into the table and results.json.
#
#   report.pl RAW.jsonl META.json OUT.json [NOISE.txt]
#
# RAW has one JSON object per measured run (written by bench/lib/workloads.sh);
# META describes the run (mode, sizes, versions); NOISE is noise.pl's timeline
# of the CPU used by other processes, from which each run gets other_cpu_pct. Prints the table of medians,
# ratios and targets (PASS/FAIL) on stdout and writes the same, with every
# run's value, to OUT.json.
use strict;
use warnings;
use JSON::PP;

my ($raw_file, $meta_file, $out_file, $noise_file) = @ARGV;
defined $out_file or die "usage: report.pl RAW.jsonl META.json OUT.json [NOISE.txt]\n";
my $json = JSON::PP->new->canonical->pretty;
my @raw;
open my $fh, '<', $raw_file or die "report.pl: $raw_file: $!\n";
while (<$fh>) { next unless /\S/; push @raw, decode_json($_); }
close $fh;
my $meta = do { local $/; open my $m, '<', $meta_file or die "report.pl: $meta_file: $!\n"; decode_json(<$m>) };

# Share of the machine (percent of all cores) that processes outside the
# benchmark used during each run, from noise.pl's timeline.
my @noise;
if (defined $noise_file && open my $nf, '<', $noise_file) {
  while (<$nf>) { push @noise, [$1, $2] if /^(\S+) (\S+)$/; }
}
my ($cores) = ($meta->{machine} // '') =~ /^(\d+) cores/;
sub cpu_at {
  my ($t) = @_;
  return undef if !@noise || $t < $noise[0][0] || $t > $noise[-1][0];
  for my $i (1 .. $#noise) {
    next if $noise[$i][0] < $t;
    my ($a, $b) = ($noise[$i - 1], $noise[$i]);
    return $a->[1] + ($b->[1] - $a->[1]) * ($t - $a->[0]) / (($b->[0] - $a->[0]) || 1);
  }
  return $noise[-1][1];
}
for my $r (@raw) {
  next unless $r->{t0} && $r->{t1} && $r->{t1} > $r->{t0} && $cores;
  my ($c0, $c1) = (cpu_at($r->{t0}), cpu_at($r->{t1}));
  $r->{other_cpu_pct} = 0 + sprintf('%.1f', 100 * ($c1 - $c0) / ($r->{t1} - $r->{t0}) / $cores)
    if defined $c0 && defined $c1;
}
# One line on the CPU other processes took during a workload's runs.
sub noise_line {
  my ($w) = @_;
  my @p = sort { $a <=> $b } map { $_->{other_cpu_pct} } grep { $_->{w} eq $w && defined $_->{other_cpu_pct} } @raw;
  return unless @p;
  printf "other processes on the machine used %.0f %% of its CPU during these runs (median; max %.0f %%)%s\n",
    $p[$#p / 2], $p[-1], $p[-1] > 10 ? ': figures are noisy' : '';
}

my $INF = 9**9**9;
# Median; undef values (a run that timed out or failed) count as +infinity,
# so one failed run of three still gives a median, two do not.
sub median {
  my @v = sort { $a <=> $b } map { defined $_ ? $_ : $INF } @_;
  return undef unless @v;
  my $m = @v % 2 ? $v[$#v / 2] : ($v[@v / 2 - 1] + $v[@v / 2]) / 2;
  return $m == $INF ? undef : $m;
}
sub fmt { my ($f, $v) = @_; defined $v ? sprintf($f, $v) : 'n/a' }
sub runs_text { '(' . join(', ', map { defined $_ ? sprintf('%.4g', $_) : 'TIMEOUT' } @_) . ')' }
sub round { my ($v, $d) = @_; defined $v ? 0 + sprintf("%.${d}f", $v) : undef }

my %out = (meta => $meta, raw => \@raw);
my @targets;
# Figures held to a threshold the issue does not set (other conditions than
# its own) are listed apart, so that the targets are exactly the issue's.
my @also;
sub verdict {
  my ($name, $value, $op, $threshold, $note) = @_;
  my $pass = !defined $value ? undef : $op eq '>=' ? ($value >= $threshold) : ($value <= $threshold);
  return {name => $name, value => round($value, 4), op => $op, threshold => $threshold,
          pass => defined $pass ? ($pass ? JSON::PP::true : JSON::PP::false) : undef, note => $note // ''};
}
sub target { push @targets, verdict(@_) }
sub also { push @also, verdict(@_) }

# ---------------------------------------------------------------- 1. overhead
# pgtandem's default capture is "auto": which trigger it chose is recorded with each run.
my @conditions = qw(none pgtandem-stopped pgtandem-running pgtandem_plpgsql-stopped bucardo-stopped bucardo-running);
my ($default_capture) = map { $_->{capture} // () } grep { $_->{w} eq 'overhead' && $_->{condition} =~ /^pgtandem-/ } @raw;
my $default_name = {c => 'C', plpgsql => 'PL/pgSQL'}->{$default_capture // ''} // '?';
my %label = ('none' => 'no capture', 'pgtandem-stopped' => "pgtandem ($default_name), daemon stopped",
             'pgtandem-running' => "pgtandem ($default_name), daemon running",
             'pgtandem_plpgsql-stopped' => 'pgtandem PL/pgSQL, daemon stopped',
             'bucardo-stopped' => 'Bucardo triggers, daemon stopped',
             'bucardo-running' => 'Bucardo triggers, daemon running');
my %overhead;
for my $c (@conditions) {
  my @recs = grep { $_->{w} eq 'overhead' && $_->{condition} eq $c } @raw;
  next unless @recs;
  my @runs = map { $_->{tps} } @recs;
  $overhead{$c} = {runs => \@runs, median => round(median(@runs), 1)};
  $overhead{$c}{capture} = $recs[0]{capture} if defined $recs[0]{capture};
}
my $none = $overhead{none} && $overhead{none}{median};
$overhead{$_}{ratio} = $none ? round($overhead{$_}{median} / $none, 3) : undef for keys %overhead;
$out{overhead} = {pgbench => "TPC-B-like, -c 4 -j 2 -T $meta->{pgbench_seconds}, scale 10", conditions => \%overhead};

print "\n=== 1. Source overhead: pgbench TPS on the source (TPC-B, -c 4 -j 2, $meta->{pgbench_seconds} s, scale 10)\n";
printf "%-36s %9s %7s   %s\n", 'condition', 'TPS', 'ratio', 'runs';
for my $c (@conditions) {
  my $o = $overhead{$c} or next;
  printf "%-36s %9s %7s   %s\n", $label{$c}, fmt('%.0f', $o->{median}), fmt('%.2f', $o->{ratio}), runs_text(@{$o->{runs}});
}
noise_line('overhead');
print $default_name eq 'C'
  ? "pgtandem's default capture (\"auto\") took the C trigger, as the module is on the server; a managed source,\n" .
    "which cannot load it, gets the PL/pgSQL one (README \"Capture in C\")\n"
  : "pgtandem's default capture (\"auto\") took the $default_name trigger: the C module was not found\n";
target("source TPS with pgtandem capture ($default_name, the default) / without",
       $overhead{'pgtandem-stopped'}{ratio}, '>=', 0.90);
also("source TPS with pgtandem PL/pgSQL capture (managed sources) / without",
     $overhead{'pgtandem_plpgsql-stopped'}{ratio}, '>=', 0.90);
also("source TPS with pgtandem capture / without, daemon running",
     $overhead{'pgtandem-running'}{ratio}, '>=', 0.90);

# ---------------------------------------------------------------- 2. catch-up
my %catchup;
my @sizes = @{$meta->{catchup_sizes}};
for my $rows (@sizes) {
  for my $tool (qw(pgtandem bucardo copy)) {
    my @recs = grep { $_->{w} eq 'catchup' && $_->{tool} eq $tool && $_->{rows} == $rows } @raw;
    next unless @recs;
    my @secs = map { $_->{seconds} } @recs;
    my $med = median(@secs);
    my %c = (runs_s => \@secs, median_s => round($med, 3),
             rows_per_s => defined $med && $med > 0 ? round($rows / $med, 0) : undef);
    if ($tool ne 'copy') {
      $c{backlog_update_runs_s} = [map { $_->{update_s} } @recs];
      $c{backlog_update_median_s} = round(median(@{$c{backlog_update_runs_s}}), 3);
      $c{md5_all_equal} = (grep { !$_->{md5_ok} } @recs) ? JSON::PP::false : JSON::PP::true;
    }
    $catchup{$rows}{$tool} = \%c;
  }
}
print "\n=== 2. Catch-up: backlog committed with the replicator stopped; clock from its start until the target equals the source\n";
printf "%-10s %-9s %9s %12s %10s %6s   %s\n", 'backlog', 'tool', 'seconds', 'rows/s', 'UPDATE s', 'md5', 'runs (s)';
for my $rows (@sizes) {
  for my $tool (qw(pgtandem bucardo copy)) {
    my $c = $catchup{$rows}{$tool} or next;
    printf "%-10s %-9s %9s %12s %10s %6s   %s\n", $rows, $tool eq 'copy' ? 'bare COPY' : $tool,
      fmt('%.2f', $c->{median_s}), fmt('%.0f', $c->{rows_per_s}),
      $tool eq 'copy' ? '-' : fmt('%.2f', $c->{backlog_update_median_s}),
      $tool eq 'copy' ? '-' : ($c->{md5_all_equal} ? 'equal' : 'DIFF'), runs_text(@{$c->{runs_s}});
  }
}
print "$meta->{note_100k}\n" if $meta->{note_100k} && grep { $_ == 100000 } @sizes;
my $ref = (grep { $_ == 1000000 } @sizes) ? 1000000 : $sizes[-1];
my $at = $ref == 1000000 ? '1M' : "$ref rows (--quick)";
my $rate = sub { my ($tool) = @_; $catchup{$ref}{$tool} && $catchup{$ref}{$tool}{rows_per_s} };
my ($pr, $br, $cr) = map { $rate->($_) } qw(pgtandem bucardo copy);
my %ratios = (pgtandem_vs_bucardo => $pr && $br ? $pr / $br : undef, pgtandem_vs_copy => $pr && $cr ? $pr / $cr : undef);
noise_line('catchup');
printf "pgtandem at %s: %s x Bucardo's rate, %s x the bare COPY rate\n", $at,
  fmt('%.2f', $ratios{pgtandem_vs_bucardo}), fmt('%.2f', $ratios{pgtandem_vs_copy});
target("catch-up rate at $at: pgtandem / Bucardo", $ratios{pgtandem_vs_bucardo}, '>=', 10);
target("catch-up rate at $at: pgtandem / bare COPY", $ratios{pgtandem_vs_copy}, '>=', 0.5);

# Linearity: the time each step of backlog adds per added row, 100k -> 1M
# and 1M -> 5M, must agree within 15 %: time that grows linearly adds the same
# for every row, and a fixed start-up cost (the daemon's start, its first
# connections, the clock's poll) adds to every size alike without bending the
# line. Seconds per row at each size are printed beside it; they fold that
# fixed cost into the small backlog, where even the bare COPY, the physical
# limit, costs most per row. Returns both (undef without the three sizes).
sub linearity {
  my ($tool, $name) = @_;
  my %seconds = map { $_ => $catchup{$_}{$tool}{median_s} }
                grep { $catchup{$_}{$tool} && defined $catchup{$_}{$tool}{median_s} } @sizes;
  my %spr = map { $_ => $seconds{$_} / $_ } keys %seconds;
  my @steps = ([100000, 1000000], [1000000, 5000000]);
  return (\%spr, {}, undef) if grep { !defined $seconds{$_->[0]} || !defined $seconds{$_->[1]} } @steps;
  my %added = map {; "$_->[0]-$_->[1]" => ($seconds{$_->[1]} - $seconds{$_->[0]}) / ($_->[1] - $_->[0]) } @steps;
  my ($low, $high) = sort { $a <=> $b } values %added;
  my $dev = $low > 0 ? $high / $low - 1 : undef;
  printf "%s: seconds per added row 100k -> 1M %.2f us, 1M -> 5M %.2f us: %s apart (seconds per row %s)\n", $name,
    1e6 * $added{'100000-1000000'}, 1e6 * $added{'1000000-5000000'}, fmt('%.1f %%', defined $dev ? 100 * $dev : undef),
    join(' / ', map { sprintf('%.2f', $spr{$_} * 1e6) } sort { $a <=> $b } keys %spr) . ' us';
  return (\%spr, \%added, $dev);
}
my ($spr, $added, $dev) = linearity('pgtandem', 'pgtandem');
my $lin_note = defined $dev ? undef : 'needs the 100k, 1M and 5M backlogs (full run)';
my ($copy_spr, $copy_added, $copy_dev) = linearity('copy', 'bare COPY');
# pgtandem's time over the bare COPY's at each size: constant when pgtandem
# grows as the physical limit grows, whatever the machine's curve.
my %over_copy = map { $_ => $catchup{$_}{pgtandem}{median_s} / $catchup{$_}{copy}{median_s} }
                grep { $catchup{$_}{pgtandem} && $catchup{$_}{copy} && $catchup{$_}{copy}{median_s} } @sizes;
my ($oc_low, $oc_high) = (sort { $a <=> $b } values %over_copy)[0, -1];
my $over_copy_spread = keys %over_copy == 3 && $oc_low > 0 ? $oc_high / $oc_low - 1 : undef;
printf "pgtandem's time over the bare COPY's: %s%s\n",
  join(' / ', map { sprintf('%.2f', $over_copy{$_}) } sort { $a <=> $b } keys %over_copy),
  defined $over_copy_spread ? sprintf(' (%.1f %% apart)', 100 * $over_copy_spread) : '' if %over_copy;
also("catch-up time over the bare COPY's, 100k / 1M / 5M, within", $over_copy_spread, '<=', 0.15);
my $us = sub { my ($h) = @_; return {map { $_ => round($h->{$_} * 1e6, 3) } keys %$h} };
$out{catchup} = {sizes => \@sizes, by_rows => \%catchup,
                 ratios_at_rows => $ref, ratios => {map { $_ => round($ratios{$_}, 3) } keys %ratios},
                 pgtandem_us_per_row => $us->($spr), pgtandem_us_per_added_row => $us->($added),
                 linearity_deviation => round($dev, 4),
                 copy_us_per_row => $us->($copy_spr), copy_us_per_added_row => $us->($copy_added),
                 copy_linearity_deviation => round($copy_dev, 4),
                 pgtandem_over_copy => {map { $_ => round($over_copy{$_}, 3) } keys %over_copy},
                 pgtandem_over_copy_spread => round($over_copy_spread, 4), note_5m => $meta->{note_5m},
                 note_100k => $meta->{note_100k}};
target('catch-up grows linearly: s per added row, 100k->1M vs 1M->5M', $dev, '<=', 0.15, $lin_note);

# The machine's own bend (bench/lib/page_cache.sh): new page cache in the
# last piece of a 2 GiB file against the first, and where it first cost
# twice the first's.
my ($probe) = grep { $_->{w} eq 'page_cache' } @raw;
if ($probe) {
  my @ms = @{$probe->{ms_per_mib}};
  my ($bend) = grep { $ms[$_] > 2 * $ms[0] } 0 .. $#ms;
  my $bend_mib = defined $bend ? $bend * $probe->{piece_mib} : undef;
  printf "machine: new page cache cost %.2f ms per MiB in a file's first %d MiB, %.2f in its last (%.1f x)%s\n",
    $ms[0], $probe->{piece_mib}, $ms[-1], $ms[-1] / $ms[0],
    defined $bend_mib ? ", twice the first from $bend_mib MiB on (README: why the 5M step costs more here)" : '';
  $out{machine_page_cache} = {ms_per_mib => \@ms, piece_mib => $probe->{piece_mib}, doubled_from_mib => $bend_mib};
}

# ---------------------------------------------------------------- 3. lag
my %lag;
for my $tool (qw(pgtandem bucardo)) {
  my @recs = grep { $_->{w} eq 'lag' && $_->{tool} eq $tool } @raw;
  next unless @recs;
  my %l = (runs => [map { {%{$_->{lag}}, pgbench_tps => $_->{pgbench_tps}, daemon_cpu_s => $_->{daemon_cpu_s}} } @recs]);
  for my $k (qw(p50_ms p95_ms p99_ms max_ms)) { $l{$k} = round(median(map { $_->{lag}{$k} } @recs), 1); }
  $l{missing_markers} = 0;
  $l{missing_markers} += $_->{lag}{missing} for @recs;
  $l{pgbench_tps_median} = round(median(map { $_->{pgbench_tps} } @recs), 1);
  my @cpu = map { $_->{daemon_cpu_s} && $_->{seconds} ? 100 * $_->{daemon_cpu_s} / $_->{seconds} : undef } @recs;
  $l{daemon_cpu_pct_median} = round(median(@cpu), 1);
  $lag{$tool} = \%l;
}
$out{lag} = {load => "pgbench -R 200 -c 4 -j 2 -T $meta->{lag_seconds}, marker every 100 ms, polled every 5 ms", by_tool => \%lag};
print "\n=== 3. Lag of a marker committed every 100 ms, polled every 5 ms, under pgbench -R 200 ($meta->{lag_seconds} s)\n";
printf "%-9s %8s %8s %8s %8s %8s %9s   %s\n", 'tool', 'p50 ms', 'p95 ms', 'max ms', 'missing', 'TPS', 'CPU %', 'runs p50/p95/max';
for my $tool (qw(pgtandem bucardo)) {
  my $l = $lag{$tool} or next;
  printf "%-9s %8s %8s %8s %8d %8s %9s   %s\n", $tool, fmt('%.0f', $l->{p50_ms}), fmt('%.0f', $l->{p95_ms}),
    fmt('%.0f', $l->{max_ms}), $l->{missing_markers}, fmt('%.0f', $l->{pgbench_tps_median}),
    fmt('%.1f', $l->{daemon_cpu_pct_median}),
    join(' ', map { sprintf('%s/%s/%s', map { fmt('%.0f', $_) } @{$_}{qw(p50_ms p95_ms max_ms)}) } @{$l->{runs}});
}
noise_line('lag');
target('lag p95 at 200 TPS (ms), pgtandem', $lag{pgtandem} && $lag{pgtandem}{p95_ms}, '<=', 100,
  $lag{pgtandem} && $lag{pgtandem}{missing_markers} ? "$lag{pgtandem}{missing_markers} marker(s) never seen" : undef);

# ---------------------------------------------------------------- 4. memory
my (@pgt_rss, @buc_sum, @buc_hwm);
for (grep { $_->{w} eq 'catchup' && $_->{rows} == $ref } @raw) {
  push @pgt_rss, $_->{rss_kib} if $_->{tool} eq 'pgtandem' && defined $_->{rss_kib};
  if ($_->{tool} eq 'bucardo' && $_->{memory}) {
    push @buc_sum, $_->{memory}{peak_sum_kib};
    push @buc_hwm, $_->{memory}{hwm_sum_kib};
  }
}
my $max = sub { my $m; for (@_) { $m = $_ if !defined $m || $_ > $m } $m };
my %mem = (rows => $ref,
  pgtandem => {vmhwm_runs_kib => \@pgt_rss, median_kib => median(@pgt_rss), max_kib => $max->(@pgt_rss)},
  bucardo => {peak_sum_rss_runs_kib => \@buc_sum, median_kib => median(@buc_sum), max_kib => $max->(@buc_sum),
              sum_of_vmhwm_runs_kib => \@buc_hwm,
              roles_last_run_kib => (map { $_->{memory}{roles} } grep { $_->{w} eq 'catchup' && $_->{tool} eq 'bucardo' && $_->{rows} == $ref && $_->{memory} } @raw)[-1]});
$out{memory} = \%mem;
print "\n=== 4. Daemon memory during the $at catch-up\n";
printf "%-9s %10s %10s   %s\n", 'tool', 'median MiB', 'max MiB', 'what';
printf "%-9s %10s %10s   %s\n", 'pgtandem', fmt('%.1f', $mem{pgtandem}{median_kib} && $mem{pgtandem}{median_kib} / 1024),
  fmt('%.1f', $mem{pgtandem}{max_kib} && $mem{pgtandem}{max_kib} / 1024), 'VmHWM of the one process ' . runs_text(map { $_ / 1024 } @pgt_rss);
printf "%-9s %10s %10s   %s\n", 'bucardo', fmt('%.1f', $mem{bucardo}{median_kib} && $mem{bucardo}{median_kib} / 1024),
  fmt('%.1f', $mem{bucardo}{max_kib} && $mem{bucardo}{max_kib} / 1024),
  'peak of the summed RSS of MCP+CTL+KID+VAC, sampled every 100 ms ' . runs_text(map { $_ / 1024 } @buc_sum);
target("daemon peak RSS during the $at catch-up (MiB), pgtandem, worst run",
  $mem{pgtandem}{max_kib} && $mem{pgtandem}{max_kib} / 1024, '<=', 64);

# ---------------------------------------------------------------- targets
$out{targets} = \@targets;
$out{also_measured} = \@also;
sub print_verdicts {
  my ($yes, $no, @list) = @_;
  for my $t (@list) {
    my $verdict = !defined $t->{pass} ? 'n/a ' : $t->{pass} ? $yes : $no;
    printf "%-6s %-68s %10s %s %s%s\n", $verdict, $t->{name}, fmt('%.3g', $t->{value}), $t->{op}, $t->{threshold},
      $t->{note} ? "  ($t->{note})" : '';
  }
}
print "\n=== Targets (issue #3)\n";
print_verdicts('PASS', 'FAIL', @targets);
print "\n=== Also measured, against the same thresholds (not targets)\n";
print_verdicts('meets', 'misses', @also);
open my $o, '>', $out_file or die "report.pl: $out_file: $!\n";
print {$o} $json->encode(\%out);
close $o;
