package systemd

import (
	"fmt"
	"net"

	"github.com/coreos/go-systemd/v22/activation"
)

// Listener returns the listening socket systemd passed (socket activation,
// palid.socket) named name, or the first one when name is empty. ok is false
// when systemd passed none, and the caller then listens by itself.
func Listener(name string) (l net.Listener, ok bool, err error) {
	byName, err := activation.ListenersWithNames()
	if err != nil {
		return nil, false, fmt.Errorf("socket activation: %w", err)
	}
	for n, ls := range byName {
		for _, cand := range ls {
			if cand == nil {
				continue
			}
			if name == "" || n == name {
				return cand, true, nil
			}
		}
	}
	return nil, false, nil
}
