// Package delegate runs palid's vision tower on an NPU through TensorFlow
// Lite: a binding of the TFLite C API loaded at run time with purego (no
// cgo, so palid stays a CGO_ENABLED=0 binary that needs only the system's
// dynamic loader), external delegates through the plugin ABI that vendors
// ship (tflite_plugin_create_delegate / tflite_plugin_destroy_delegate:
// NXP's VX delegate, Coral's libedgetpu, the Arm NN delegate), the export of
// a palid model's SigLIP tower and projector as a fully int8 .tflite, and
// the vision backend selection (cpu, tflite, auto).
//
// Every failure to load a library, find a symbol, read a model or apply a
// delegate is returned as an error naming the file and the problem.
package delegate
