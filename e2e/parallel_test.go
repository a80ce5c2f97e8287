package e2e

// Two groups of tests call t.Parallel(). The go test runner starts them
// after every other test of the package has finished, -parallel of them at
// a time (scripts/test.sh passes 4), so they never run beside the tests
// that measure outages, lateness, lost 10 ms probes, overlaps or the 10 ms
// VRRP timers (those run one at a time, as before). Each builds its own lab
// (its own namespaces, names drawn at random).
//
//   - The tests of the control socket, the command line, the metrics, the
//     journal format and secrets (cli, control, json, journal, metrics
//     and secrets_test.go): they measure no timing (their waits have
//     deadlines of seconds, against adverts at 1 s).
//   - Tests at advbase 1 whose every bound is seconds (a master-down
//     interval plus 1 s or more; waits of seconds) and that count no lost
//     10 ms probe: the ucarp interop tests but TestInteropCarpdMasterUcarpBackup
//     (lateness), tshark, preemption and demotion, the split of many
//     vhids, unicast across a router, replay, the hook conventions, the
//     link check, a SIGKILLed master's address, the split brain's heal,
//     the second SIGTERM, the start-up and bad-configuration checks,
//     systemd's notify, the corrupt state file, virtual-mac = false and
//     keepalived interop at advert_int 1 (TestVRRPKeepalived1s, whose 8
//     labs run at once); the steady state and the unplanned failover
//     (100 ms probes, the master-down interval + 1 s), virtual-mac =
//     true, the health check's demotion, the hooks run as root, the ucarp
//     signals and the threads' nice value.
//     Another lab beside them costs milliseconds of CPU, against margins
//     of a second.
//
// Tests that measure finer (the 10 ms VRRP labs, lost 10 ms probes,
// overlaps and unheld intervals from netlink, advert lateness, the flood,
// a check's release counted in 10 ms probes, addresses sampled 20 ms
// apart, an IPv6 takeover's NAs judged from a poll, the bgp and etcd
// movers' outages) stay sequential, and so does TestBounds, whose 100
// reloads and 1,000 control connections take CPU from the labs beside it.
// This takes about six minutes off the test command on 2 cores.
