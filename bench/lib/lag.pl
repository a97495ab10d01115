#!/usr/bin/perl
# Replication lag of marker rows: commit one on the source every --every
# seconds, poll the target every --poll seconds, report lag percentiles.
#
#   lag.pl --src DBI_DSN --dst DBI_DSN [--duration 30] [--every 0.1] [--poll 0.005] [--drain 60]
#
# Lag of a marker = the time it is first seen on the target minus the time its
# INSERT's commit returned on the source. Both are read from this host's clock,
# in one process; the resolution is --poll. Markers go into bench_marker (a
# small table with a primary key, replicated by the tool under test), with ids
# above any already there. After --duration it keeps polling for up to
# --drain seconds for markers not yet seen; those still missing are counted,
# not guessed. Prints one JSON object:
#   {"markers":N,"missing":M,"p50_ms":..,"p95_ms":..,"p99_ms":..,"max_ms":..,"mean_ms":..}
use strict;
use warnings;
use DBI;
use Getopt::Long;
use JSON::PP;
use Time::HiRes qw(time sleep);

my %opt = (duration => 30, every => 0.1, poll => 0.005, drain => 60, user => 'postgres');
GetOptions(\%opt, 'src=s', 'dst=s', 'duration=f', 'every=f', 'poll=f', 'drain=f', 'user=s')
  or die "lag.pl: bad arguments\n";
defined $opt{src} && defined $opt{dst} or die "lag.pl: --src and --dst are required\n";

my %attr = (AutoCommit => 1, RaiseError => 1, PrintError => 0);
my $src = DBI->connect($opt{src}, $opt{user}, '', \%attr) or die "lag.pl: source: $DBI::errstr\n";
my $dst = DBI->connect($opt{dst}, $opt{user}, '', \%attr) or die "lag.pl: target: $DBI::errstr\n";

my ($next_id) = $src->selectrow_array('SELECT coalesce(max(id), 0) + 1 FROM bench_marker');
my $first_id = $next_id;
my $insert = $src->prepare('INSERT INTO bench_marker (id, note) VALUES (?, ?)');
my $probe = $dst->prepare('SELECT id FROM bench_marker WHERE id >= ? ORDER BY id');

my (%committed, %seen);
my $lowest_unseen = $first_id;

# Marks every marker now visible on the target as seen at the time the query returned.
sub poll_target {
  $probe->execute($lowest_unseen);
  my $ids = $probe->fetchall_arrayref;
  my $at = time;
  for my $row (@$ids) {
    my $id = $row->[0];
    next unless exists $committed{$id};
    $seen{$id} //= $at;
  }
  $lowest_unseen++ while exists $seen{$lowest_unseen};
}

my $start = time;
my $end = $start + $opt{duration};
my $next_insert = $start;
my $next_poll = $start;
while (1) {
  my $now = time;
  last if $now >= $end;
  if ($now >= $next_insert) {
    $insert->execute($next_id, 'lag');
    $committed{$next_id} = time;
    $next_id++;
    $next_insert += $opt{every};
    # Never try to catch up a burst of markers after a stall.
    $next_insert = time + $opt{every} if $next_insert < time;
  }
  if (time >= $next_poll) {
    poll_target();
    $next_poll = time + $opt{poll};
  }
  my $wake = $next_insert < $next_poll ? $next_insert : $next_poll;
  my $wait = $wake - time;
  sleep $wait if $wait > 0;
}

# Drain: wait for the markers still unseen.
my $drain_end = time + $opt{drain};
while (keys %seen < keys %committed && time < $drain_end) {
  poll_target();
  sleep $opt{poll};
}

my @lags = sort { $a <=> $b } map { ($seen{$_} - $committed{$_}) * 1000 } grep { exists $seen{$_} } keys %committed;
my $n = scalar keys %committed;
# Nearest-rank percentile of the sorted lags.
sub pct {
  my ($p) = @_;
  return undef unless @lags;
  my $rank = int($p / 100 * @lags + 0.999999);
  $rank = 1 if $rank < 1;
  return 0 + sprintf('%.1f', $lags[$rank - 1]);
}
my $sum = 0;
$sum += $_ for @lags;
print JSON::PP->new->canonical->encode({
  markers => $n,
  missing => $n - scalar(@lags),
  p50_ms  => pct(50),
  p95_ms  => pct(95),
  p99_ms  => pct(99),
  max_ms  => @lags ? 0 + sprintf('%.1f', $lags[-1]) : undef,
  mean_ms => @lags ? 0 + sprintf('%.1f', $sum / @lags) : undef,
}), "\n";
