package e2e

// The tests of the control socket, the command line, the metrics, the
// journal format and secrets (cli, control, json, journal, metrics and
// secrets_test.go) call t.Parallel(): they measure no timing (their waits
// have deadlines of seconds, against adverts at 1 s), and each builds its
// own lab (its own namespaces, names drawn at random). The go test
// runner starts them after every other test of the package has finished,
// GOMAXPROCS of them at a time, so they never run beside the tests that
// measure outages, lateness or the 10 ms VRRP timers. This takes about a
// minute off the test command on 2 cores.
