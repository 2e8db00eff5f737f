package delegate

import (
	"fmt"
	"sort"
	"sync"
	"unsafe"

	"github.com/ebitengine/purego"
)

// ExternalDelegate is a vendor's TFLite delegate loaded through the plugin
// ABI of TFLite's external delegate:
//
//	TfLiteDelegate* tflite_plugin_create_delegate(char** keys, char** values,
//	    size_t num_options, void (*report_error)(const char*));
//	void tflite_plugin_destroy_delegate(TfLiteDelegate* delegate);
//
// NXP's libvx_delegate.so, Coral's libedgetpu.so.1 and the Arm NN delegate
// (libarmnnDelegate.so) export it.
type ExternalDelegate struct {
	path    string
	h       uintptr
	p       uintptr
	destroy uintptr
}

// createMu serializes plugin creation: the plugin's report_error callback
// carries no context, so only one creation may be reporting at a time.
var createMu sync.Mutex

// LoadDelegate opens the delegate library at path and creates a delegate
// with options (sent to the plugin sorted by key). A library without the
// plugin symbols, or a plugin that returns no delegate, is an error naming
// the library and what the plugin reported.
func LoadDelegate(path string, options map[string]string) (*ExternalDelegate, error) {
	if _, err := statFile(path); err != nil {
		return nil, fmt.Errorf("tflite delegate: library %s: %w", path, err)
	}
	c, err := loadLibc()
	if err != nil {
		return nil, err
	}
	h, err := purego.Dlopen(path, purego.RTLD_NOW|purego.RTLD_LOCAL)
	if err != nil {
		return nil, fmt.Errorf("tflite delegate: cannot load %s: %s", path, oneLine(err.Error()))
	}
	create, err1 := purego.Dlsym(h, "tflite_plugin_create_delegate")
	destroy, err2 := purego.Dlsym(h, "tflite_plugin_destroy_delegate")
	if err1 != nil || err2 != nil || create == 0 || destroy == 0 {
		purego.Dlclose(h)
		missing := "tflite_plugin_create_delegate"
		if err1 == nil && create != 0 {
			missing = "tflite_plugin_destroy_delegate"
		}
		return nil, fmt.Errorf("tflite delegate: %s is not a TFLite delegate plugin: missing symbol %s", path, missing)
	}

	keys := make([]string, 0, len(options))
	for k := range options {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	n := len(keys)
	ka := c.alloc(8 * n)
	va := c.alloc(8 * n)
	kp := unsafe.Slice((*uintptr)(ptr(ka)), max(n, 1))
	vp := unsafe.Slice((*uintptr)(ptr(va)), max(n, 1))
	for i, k := range keys {
		kp[i] = c.cString(k)
		vp[i] = c.cString(options[k])
	}
	defer func() {
		for i := 0; i < n; i++ {
			c.release(kp[i])
			c.release(vp[i])
		}
		c.release(ka)
		c.release(va)
	}()

	log := &errorLog{c: c}
	initReporters()
	createMu.Lock()
	reporters.mu.Lock()
	reporters.m[0] = log
	reporters.mu.Unlock()
	p, _, _ := purego.SyscallN(create, ka, va, uintptr(n), reporters.plug)
	reporters.mu.Lock()
	delete(reporters.m, 0)
	reporters.mu.Unlock()
	createMu.Unlock()
	if p == 0 {
		purego.Dlclose(h)
		return nil, fmt.Errorf("tflite delegate: %s returned no delegate (options %v): %s", path, options, orUnknown(log.take()))
	}
	return &ExternalDelegate{path: path, h: h, p: p, destroy: destroy}, nil
}

// Path is the delegate library's file.
func (d *ExternalDelegate) Path() string { return d.path }

// Close destroys the delegate. Interpreters using it must be closed first.
// The library stays mapped: plugins often keep threads and state that do
// not survive being unloaded.
func (d *ExternalDelegate) Close() error {
	if d.p != 0 {
		purego.SyscallN(d.destroy, d.p)
		d.p = 0
	}
	return nil
}
