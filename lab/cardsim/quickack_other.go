//go:build !linux

package cardsim

import "net"

// quickAck is Linux-only (TCP_QUICKACK); elsewhere the lab is merely slower.
func quickAck(net.Conn) {}
