#!/usr/bin/perl
# Measures the CPU that processes other than the benchmark's use, until SIGTERM.
#
#   noise.pl --self PID --pidfile FILE... [--exclude-match REGEX] [--interval 1]
#
# Every --interval seconds prints "EPOCH CPU_SECONDS": the CPU time (user +
# system) used since start by every process outside the benchmark. The
# benchmark is the process tree of --self (bench/run: psql, pgbench, the
# pgtandem daemon, the helpers), the trees of the PIDs named on the first line
# of each --pidfile (the postmasters; read again each time, since they start
# after this), and processes whose command line matches --exclude-match with
# their trees (Bucardo's, which detach from bench/run). A process that started
# after this script counts from zero; one that ends between two samples loses
# at most one interval. bench/lib/report.pl turns the timeline into the share
# of the machine that was busy with something else during each measured run.
use strict;
use warnings;
use Getopt::Long;
use POSIX ();
use Time::HiRes qw(time sleep);

my %opt = (interval => 1, pidfile => []);
GetOptions(\%opt, 'self=i', 'pidfile=s@', 'exclude-match=s', 'interval=f') or die "noise.pl: bad arguments\n";
my $stop = 0;
$SIG{TERM} = $SIG{INT} = sub { $stop = 1 };
$| = 1;
my $ticks = POSIX::sysconf(POSIX::_SC_CLK_TCK()) || 100;
my ($boot) = (`cat /proc/stat` =~ /^btime (\d+)/m);
my $t_start = time;

sub slurp { open my $fh, '<', $_[0] or return undef; local $/; my $t = <$fh>; return $t; }

my (%first, %last);    # pid:starttime -> cpu seconds
my $gone = 0;          # cpu of foreign processes no longer there
while (1) {
  my (%parent, %stat, %cmd);
  opendir my $proc, '/proc' or die "noise.pl: /proc: $!\n";
  for my $pid (grep { /^\d+$/ } readdir $proc) {
    my $s = slurp("/proc/$pid/stat") // next;
    $s =~ /^\d+ \(.*\) (.*)$/s or next;
    my @f = split ' ', $1;
    $parent{$pid} = $f[1];
    $stat{$pid} = [($f[11] + $f[12]) / $ticks, $f[19]];    # cpu, starttime (ticks)
    if (defined $opt{'exclude-match'}) {
      my $c = slurp("/proc/$pid/cmdline") // '';
      $cmd{$pid} = $c;
    }
  }
  closedir $proc;
  my @roots = ($opt{self} // ());
  for my $file (@{$opt{pidfile}}) {
    my ($p) = (slurp($file) // '') =~ /^\s*(\d+)/;
    push @roots, $p if $p;
  }
  if (defined $opt{'exclude-match'}) {
    push @roots, grep { $cmd{$_} =~ /$opt{'exclude-match'}/ } keys %cmd;
  }
  my %children;
  push @{$children{$parent{$_}}}, $_ for keys %parent;
  my %ours;
  my @queue = grep { exists $parent{$_} } @roots;
  while (defined(my $p = shift @queue)) {
    next if $ours{$p}++;
    push @queue, @{$children{$p} // []};
  }
  my %seen;
  for my $pid (keys %stat) {
    next if $ours{$pid} || $pid == $$;
    my ($cpu, $start) = @{$stat{$pid}};
    my $key = "$pid:$start";
    $seen{$key} = 1;
    # Started after us: all its CPU is in our window.
    $first{$key} //= ($boot + $start / $ticks > $t_start) ? 0 : $cpu;
    $last{$key} = $cpu;
  }
  for my $key (keys %last) {
    next if $seen{$key};
    $gone += $last{$key} - $first{$key};
    delete $last{$key};
    delete $first{$key};
  }
  my $total = $gone;
  $total += $last{$_} - $first{$_} for keys %last;
  printf "%.3f %.2f\n", time, $total;
  last if $stop;
  sleep $opt{interval};
}
