package announce

import (
	"fmt"
	"net"

	"github.com/mdlayher/arp"
	"github.com/mdlayher/packet"
	"golang.org/x/net/bpf"
)

// etherTypeARP is the EtherType of ARP.
const etherTypeARP = 0x0806

// New returns an Announcer that sends through arp.Client values bound to
// AF_PACKET sockets.
func New() *Announcer {
	return newAnnouncer(dialARP)
}

// dialARP opens an ARP client on the interface with index ifindex. Its
// socket only sends: a filter attached before bind drops every received
// frame, so that unread ARP traffic does not pile up in its buffer.
func dialARP(ifindex int) (arpWriter, error) {
	ifi, err := net.InterfaceByIndex(ifindex)
	if err != nil {
		return nil, err
	}
	dropAll, err := bpf.Assemble([]bpf.Instruction{bpf.RetConstant{Val: 0}})
	if err != nil {
		return nil, fmt.Errorf("assemble BPF filter: %w", err)
	}
	p, err := packet.Listen(ifi, packet.Raw, etherTypeARP, &packet.Config{Filter: dropAll})
	if err != nil {
		return nil, err
	}
	c, err := arp.New(ifi, p)
	if err != nil {
		p.Close()
		return nil, fmt.Errorf("%s: %w", ifi.Name, err)
	}
	return c, nil
}
