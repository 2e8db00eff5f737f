package delegate

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"unsafe"

	"github.com/ebitengine/purego"
)

// capiSymbols are the TFLite C API functions the binding calls. Library
// resolves every one of them when it opens the library, so that a missing
// symbol is an error at Open and never a crash later.
var capiSymbols = []string{
	"TfLiteVersion",
	"TfLiteModelCreate",
	"TfLiteModelDelete",
	"TfLiteInterpreterOptionsCreate",
	"TfLiteInterpreterOptionsDelete",
	"TfLiteInterpreterOptionsSetNumThreads",
	"TfLiteInterpreterOptionsAddDelegate",
	"TfLiteInterpreterOptionsSetErrorReporter",
	"TfLiteInterpreterCreate",
	"TfLiteInterpreterDelete",
	"TfLiteInterpreterGetInputTensorCount",
	"TfLiteInterpreterGetInputTensor",
	"TfLiteInterpreterAllocateTensors",
	"TfLiteInterpreterInvoke",
	"TfLiteInterpreterGetOutputTensorCount",
	"TfLiteInterpreterGetOutputTensor",
	"TfLiteTensorType",
	"TfLiteTensorNumDims",
	"TfLiteTensorDim",
	"TfLiteTensorByteSize",
	"TfLiteTensorName",
	"TfLiteTensorQuantizationParams",
	"TfLiteTensorCopyFromBuffer",
	"TfLiteTensorCopyToBuffer",
}

// Library is a loaded TFLite C library (libtensorflowlite_c.so). It is safe
// for concurrent use; the objects made from it are not, unless they say so.
type Library struct {
	path string
	h    uintptr
	sym  map[string]uintptr
	libc *libc
}

// Open loads the TFLite C library at path and resolves every function of
// the C API the binding uses. A file that is not a shared library, or a
// library that lacks a symbol, is an error naming the file (and the
// symbol); nothing is called before every symbol is found.
func Open(path string) (*Library, error) {
	if path == "" {
		return nil, errors.New("tflite: no library path configured")
	}
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("tflite: library %s: %w", path, err)
	}
	c, err := loadLibc()
	if err != nil {
		return nil, err
	}
	h, err := purego.Dlopen(path, purego.RTLD_NOW|purego.RTLD_LOCAL)
	if err != nil {
		return nil, fmt.Errorf("tflite: cannot load %s: %s", path, oneLine(err.Error()))
	}
	l := &Library{path: path, h: h, sym: make(map[string]uintptr, len(capiSymbols)), libc: c}
	var missing []string
	for _, name := range capiSymbols {
		p, err := purego.Dlsym(h, name)
		if err != nil || p == 0 {
			missing = append(missing, name)
			continue
		}
		l.sym[name] = p
	}
	if len(missing) > 0 {
		purego.Dlclose(h)
		return nil, fmt.Errorf("tflite: %s is not a TFLite C library: missing symbol %s", path, strings.Join(missing, ", "))
	}
	return l, nil
}

// Path is the file the library was loaded from.
func (l *Library) Path() string { return l.path }

// Version is the TFLite version the library reports, e.g. "2.2.0".
func (l *Library) Version() string {
	return l.libc.goString(l.call("TfLiteVersion"))
}

// call invokes a C API function resolved by Open.
func (l *Library) call(name string, args ...uintptr) uintptr {
	fn, ok := l.sym[name]
	if !ok {
		// Only names from capiSymbols are called; this is a bug in the binding.
		panic("delegate: symbol " + name + " not resolved")
	}
	r, _, _ := purego.SyscallN(fn, args...)
	return r
}

// libc holds the C library functions the binding needs: C memory for
// strings handed to plugins, and vsnprintf to format TFLite's error reports.
type libc struct {
	malloc, free, vsnprintf, strlen uintptr
}

var (
	libcOnce   sync.Once
	libcLoaded *libc
	libcErr    error
)

func loadLibc() (*libc, error) {
	libcOnce.Do(func() {
		var h uintptr
		var err error
		for _, name := range []string{"libc.so.6", "libc.so", "libc.musl-aarch64.so.1", "libc.musl-x86_64.so.1"} {
			if h, err = purego.Dlopen(name, purego.RTLD_NOW|purego.RTLD_GLOBAL); err == nil {
				break
			}
		}
		if err != nil {
			libcErr = fmt.Errorf("tflite: cannot load the C library: %v", err)
			return
		}
		c := &libc{}
		for _, s := range []struct {
			dst  *uintptr
			name string
		}{{&c.malloc, "malloc"}, {&c.free, "free"}, {&c.vsnprintf, "vsnprintf"}, {&c.strlen, "strlen"}} {
			if *s.dst, err = purego.Dlsym(h, s.name); err != nil {
				libcErr = fmt.Errorf("tflite: C library lacks %s: %v", s.name, err)
				return
			}
		}
		libcLoaded = c
	})
	return libcLoaded, libcErr
}

// cString copies s into C memory (NUL-terminated); free it with c.release.
func (c *libc) cString(s string) uintptr {
	p, _, _ := purego.SyscallN(c.malloc, uintptr(len(s)+1))
	if p == 0 {
		panic("delegate: malloc failed")
	}
	b := unsafe.Slice((*byte)(ptr(p)), len(s)+1)
	copy(b, s)
	b[len(s)] = 0
	return p
}

// alloc returns n zeroed bytes of C memory.
func (c *libc) alloc(n int) uintptr {
	p, _, _ := purego.SyscallN(c.malloc, uintptr(max(n, 1)))
	if p == 0 {
		panic("delegate: malloc failed")
	}
	clear(unsafe.Slice((*byte)(ptr(p)), max(n, 1)))
	return p
}

func (c *libc) release(p uintptr) {
	if p != 0 {
		purego.SyscallN(c.free, p)
	}
}

// goString copies a NUL-terminated C string.
func (c *libc) goString(p uintptr) string {
	if p == 0 {
		return ""
	}
	n, _, _ := purego.SyscallN(c.strlen, p)
	return string(unsafe.Slice((*byte)(ptr(p)), int(n)))
}

// format renders a printf format and its va_list (as the reporter
// callback received it) with vsnprintf.
func (c *libc) format(format, args uintptr) string {
	buf := make([]byte, 1024)
	n, _, _ := purego.SyscallN(c.vsnprintf, uintptr(unsafe.Pointer(&buf[0])), uintptr(len(buf)), format, args)
	if int32(n) < 0 {
		return c.goString(format)
	}
	return string(buf[:min(int(int32(n)), len(buf)-1)])
}

// ptr turns an address owned by C into a pointer without tripping vet's
// unsafeptr check (the memory is not Go's, so the GC does not care).
func ptr(u uintptr) unsafe.Pointer { return *(*unsafe.Pointer)(unsafe.Pointer(&u)) }

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// reporters routes TFLite's error reports to the interpreter being built
// or run. purego callbacks are a scarce resource that is never freed, so
// there is one callback for the process, made on first use, and the
// user_data pointer it gets back is a key into this table.
var reporters struct {
	once sync.Once
	cb   uintptr // void (*)(void* user_data, const char* format, va_list)
	plug uintptr // void (*)(const char*), for delegate plugins
	mu   sync.Mutex
	next uintptr
	m    map[uintptr]*errorLog
}

// errorLog collects the messages TFLite reports for one interpreter.
type errorLog struct {
	c    *libc
	mu   sync.Mutex
	msgs []string
}

func (e *errorLog) add(s string) {
	e.mu.Lock()
	defer e.mu.Unlock()
	s = strings.TrimSpace(s)
	if s != "" && len(e.msgs) < 32 {
		e.msgs = append(e.msgs, s)
	}
}

// take returns the messages so far, joined, and clears them.
func (e *errorLog) take() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := strings.Join(e.msgs, "; ")
	e.msgs = nil
	return s
}

func initReporters() {
	reporters.once.Do(func() {
		reporters.m = make(map[uintptr]*errorLog)
		reporters.cb = purego.NewCallback(func(user, format, args uintptr) uintptr {
			reporters.mu.Lock()
			e := reporters.m[user]
			reporters.mu.Unlock()
			if e != nil {
				e.add(e.c.format(format, args))
			}
			return 0
		})
		reporters.plug = purego.NewCallback(func(msg uintptr) uintptr {
			reporters.mu.Lock()
			e := reporters.m[0]
			reporters.mu.Unlock()
			if e != nil {
				e.add(e.c.goString(msg))
			}
			return 0
		})
	})
}

// registerLog adds e to the reporter table and returns its key.
func registerLog(e *errorLog) uintptr {
	initReporters()
	reporters.mu.Lock()
	defer reporters.mu.Unlock()
	reporters.next++
	reporters.m[reporters.next] = e
	return reporters.next
}

func unregisterLog(key uintptr) {
	reporters.mu.Lock()
	defer reporters.mu.Unlock()
	delete(reporters.m, key)
}
