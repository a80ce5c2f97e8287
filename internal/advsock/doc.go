// Package advsock is the raw IP protocol-112 socket that carries CARP
// advertisements.
//
// An IPv4Conn receives every protocol-112 datagram that reaches the host,
// with the IPv4 header fields the receive checks need (TTL, source,
// destination, incoming interface), and sends advertisements whose IPv4
// header it builds itself, so that TTL 255, the TOS byte and DF are exactly
// what CARP requires whatever the socket defaults are.
//
// An IPv6Conn does the same over IPv6 with the same methods. An IPv6 raw
// socket never sees the IPv6 header: the kernel builds it from socket
// options (hop limit 255, traffic class, multicast loopback off) and a
// per-packet control message (source address and interface), and reports
// hop limit, destination and interface of received datagrams in control
// messages.
//
// PrimaryIPv4 and SourceIPv6To pick the address an interface sends its
// advertisements from: its own, never a virtual one.
//
// The package opens sockets and nothing else: it neither decodes nor
// validates payloads (internal/carp does) and defines no interface for its
// callers; the daemon declares the small interface it needs.
package advsock
