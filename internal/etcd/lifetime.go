package etcd

import "time"

// AddressLifetime returns the kernel valid lifetime to give the addresses
// held until until (a Hold's Until, D) at time now: whole seconds, rounded
// down, less one second, since the kernel checks IPv4 lifetimes in whole
// seconds and may remove an address up to about a second late. ok is false
// when less than one second remains: the holder must not add or refresh
// the addresses then (release them instead).
func AddressLifetime(until, now time.Time) (lft time.Duration, ok bool) {
	left := until.Sub(now).Truncate(time.Second) - time.Second
	if left < time.Second {
		return 0, false
	}
	return left, true
}

// leaseSlack is how long before the whole seconds left to D drop by one
// RenewLifetimeAt renews: the loop's lateness it allows.
const leaseSlack = 50 * time.Millisecond

// RenewLifetimeAt returns when renewing the lifetime of addresses leased
// at now until until (AddressLifetime) lets them live longest: just before
// the whole seconds left to until drop by one, when the lifetime ends
// about a second before until instead of up to two. The zero time: no
// gain (that moment is now, or past, or leaves less than a second of
// lifetime).
func RenewLifetimeAt(until, now time.Time) time.Time {
	k := until.Sub(now).Truncate(time.Second)
	at := until.Add(-k - leaseSlack)
	if k < 2*time.Second || !at.After(now) {
		return time.Time{}
	}
	return at
}
