//go:build purego || !(amd64 || arm64)

package neon

// kernelPaths lists every path this build can run, best last.
func kernelPaths() []*kernelSet { return []*kernelSet{genericKernels} }

func bestKernels() *kernelSet { return genericKernels }

// allPaths names every path of this build, runnable or not.
var allPaths = []string{"generic"}
