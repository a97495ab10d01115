#!/usr/bin/perl
# Samples the memory and CPU of a daemon's process tree until SIGTERM.
#
#   rss.pl (--pid PID | --pidfile FILE) [--interval 0.1] [--match REGEX]
#
# The tree is the root process and all its descendants (found through the
# parent PID in /proc/*/stat); with --match, only the processes whose command
# line matches REGEX are counted. Bucardo renames its processes
# ("Bucardo Master Control Program v5.6.0...", "Bucardo Controller...",
# "Bucardo Kid...", "Bucardo VAC."), so a match on "perl" or lower-case
# "bucardo" misses them. --pidfile waits for the file (Bucardo's MCP writes
# it after forking) and reads the PID from its first line.
#
# On SIGTERM prints one JSON object:
#   peak_sum_kib   highest sum of VmRSS over the tree in one sample
#   hwm_sum_kib    sum over every process seen of its last VmHWM (an upper bound)
#   max_hwm_kib    the largest single-process VmHWM
#   cpu_s          CPU seconds (user + system) the tree used while sampled
#   roles          per process kind (MCP, CTL, KID, VAC, other): largest VmHWM
#   samples        number of samples
use strict;
use warnings;
use Getopt::Long;
use JSON::PP;
use POSIX ();
use Time::HiRes qw(time sleep);

my %opt = (interval => 0.1);
GetOptions(\%opt, 'pid=i', 'pidfile=s', 'interval=f', 'match=s') or die "rss.pl: bad arguments\n";
my $stop = 0;
$SIG{TERM} = $SIG{INT} = sub { $stop = 1 };
my $ticks = POSIX::sysconf(POSIX::_SC_CLK_TCK()) || 100;

sub slurp {
  my ($path) = @_;
  open my $fh, '<', $path or return undef;
  local $/;
  my $text = <$fh>;
  return $text;
}

my $root = $opt{pid};
while (!$root && !$stop) {
  my $text = slurp($opt{pidfile} // die "rss.pl: --pid or --pidfile is required\n");
  ($root) = ($text // '') =~ /^\s*(\d+)/;
  sleep 0.02 unless $root;
}

my (%hwm, %cpu_first, %cpu_last, %role);
my ($peak_sum, $samples) = (0, 0);
# Process kind, from Bucardo's process titles; "other" for anything else.
sub role_of {
  my ($cmd) = @_;
  return 'MCP' if $cmd =~ /^Bucardo Master Control/;
  return 'CTL' if $cmd =~ /^Bucardo Controller/;
  return 'KID' if $cmd =~ /^Bucardo Kid/;
  return 'VAC' if $cmd =~ /^Bucardo VAC/;
  return 'other';
}

while (!$stop) {
  # Parent of every process, to find the root's descendants.
  my %children;
  opendir my $proc, '/proc' or die "rss.pl: /proc: $!\n";
  for my $pid (grep { /^\d+$/ } readdir $proc) {
    my $stat = slurp("/proc/$pid/stat") // next;
    my ($ppid) = $stat =~ /\) \S+ (\d+)/ or next;
    push @{$children{$ppid}}, $pid;
  }
  closedir $proc;
  my @tree = ($root);
  for (my $i = 0; $i < @tree; $i++) { push @tree, @{$children{$tree[$i]} // []}; }
  last if $samples && !-e "/proc/$root";
  my $sum = 0;
  for my $pid (@tree) {
    my $cmd = slurp("/proc/$pid/cmdline") // next;
    $cmd =~ s/\0/ /g;
    next if defined $opt{match} && $cmd !~ /$opt{match}/;
    my $status = slurp("/proc/$pid/status") // next;
    my ($rss) = $status =~ /^VmRSS:\s+(\d+)/m;
    my ($peak) = $status =~ /^VmHWM:\s+(\d+)/m;
    $sum += $rss // 0;
    $hwm{$pid} = $peak if defined $peak;
    $role{$pid} = role_of($cmd);
    my $stat = slurp("/proc/$pid/stat") // next;
    $stat =~ s/^.*\) //s;
    my @f = split ' ', $stat;
    my $cpu = ($f[11] + $f[12]) / $ticks;    # utime, stime
    $cpu_first{$pid} //= $cpu;
    $cpu_last{$pid} = $cpu;
  }
  $peak_sum = $sum if $sum > $peak_sum;
  $samples++;
  sleep $opt{interval};
}

my %roles;
for my $pid (keys %hwm) {
  my $r = $role{$pid};
  $roles{$r} = $hwm{$pid} if !defined $roles{$r} || $hwm{$pid} > $roles{$r};
}
my ($hwm_sum, $max_hwm, $cpu) = (0, 0, 0);
for my $pid (keys %hwm) {
  $hwm_sum += $hwm{$pid};
  $max_hwm = $hwm{$pid} if $hwm{$pid} > $max_hwm;
}
$cpu += $cpu_last{$_} - $cpu_first{$_} for keys %cpu_last;
print JSON::PP->new->canonical->encode({
  peak_sum_kib => $peak_sum + 0,
  hwm_sum_kib  => $hwm_sum + 0,
  max_hwm_kib  => $max_hwm + 0,
  cpu_s        => 0 + sprintf('%.2f', $cpu),
  roles        => \%roles,
  samples      => $samples,
}), "\n";
