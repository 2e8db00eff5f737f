// Package hwtests holds the checks that need the real device: a camera, the
// NPU delegate, GPIO pins wired together and the NEON kernels on the device's
// own cores. They are built with the hwtest tag:
//
//	go test -tags hwtest ./hwtests/
//
// Each test says why it skipped when its hardware is absent.
package hwtests
