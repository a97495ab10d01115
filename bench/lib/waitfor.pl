#!/usr/bin/perl
# Polls a query until it returns true; prints the seconds since --since.
#
#   waitfor.pl --dsn DBI_DSN --sql QUERY [--interval 0.02] [--timeout 900] [--since EPOCH]
#
# QUERY returns one boolean (t/f, 1/0); an error (a table the replicator has
# not created yet, say) counts as false. Prints "SECONDS" (3 decimals) when it
# turned true, measured from --since (default: when this script started), and
# exits 0; on timeout prints "TIMEOUT" and the last error, if any, and exits 1.
use strict;
use warnings;
use DBI;
use Getopt::Long;
use Time::HiRes qw(time sleep);

my %opt = (interval => 0.02, timeout => 900, user => 'postgres');
GetOptions(\%opt, 'dsn=s', 'sql=s', 'interval=f', 'timeout=f', 'since=f', 'user=s')
  or die "waitfor.pl: bad arguments\n";
defined $opt{dsn} && defined $opt{sql} or die "waitfor.pl: --dsn and --sql are required\n";
my $since = $opt{since} // time;

my $dbh = DBI->connect("$opt{dsn}", $opt{user}, '',
  {AutoCommit => 1, RaiseError => 0, PrintError => 0, pg_server_prepare => 0})
  or die "waitfor.pl: cannot connect: $DBI::errstr\n";
my $deadline = $since + $opt{timeout};
my $last_error = '';
while (1) {
  my $row = $dbh->selectrow_arrayref($opt{sql});
  my $at = time;
  if ($row) {
    if (defined $row->[0] && $row->[0] && $row->[0] ne 'f') {
      printf "%.3f\n", $at - $since;
      exit 0;
    }
  } else {
    $last_error = $dbh->errstr // 'unknown error';
  }
  if ($at > $deadline) {
    chomp $last_error;
    print "TIMEOUT\n";
    print STDERR "waitfor.pl: timed out after $opt{timeout} s; last error: $last_error\n" if $last_error;
    exit 1;
  }
  my $next = $at + $opt{interval};
  my $wait = $next - time;
  sleep $wait if $wait > 0;
}
