// Package advsock is the raw IP protocol-112 socket that carries CARP
// advertisements.
//
// An IPv4Conn receives every protocol-112 datagram that reaches the host,
// with the IPv4 header fields the receive checks need (TTL, source,
// destination, incoming interface), and sends advertisements whose IPv4
// header it builds itself, so that TTL 255, the TOS byte and DF are exactly
// what CARP requires whatever the socket defaults are.
//
// The package opens sockets and nothing else: it neither decodes nor
// validates payloads (internal/carp does) and defines no interface for its
// callers; the daemon declares the small interface it needs. IPv6 will sit
// beside IPv4 as ListenIPv6 and IPv6Conn.
package advsock
