package main

import (
	"errors"
	"os"
	"path/filepath"
)

// defaultModelDir finds the bundled default model when no --model is given.
// It looks, in order, at $PALID_MODEL, ./models/default (a source checkout),
// the directory beside the executable (../share/palid/models/default) and
// /usr/share/palid/models/default (packages and the Buildroot image).
func defaultModelDir() (string, error) {
	if d := os.Getenv("PALID_MODEL"); d != "" {
		return d, nil
	}
	cands := []string{filepath.Join("models", "default")}
	if exe, err := os.Executable(); err == nil {
		dir := filepath.Dir(exe)
		cands = append(cands,
			filepath.Join(dir, "..", "models", "default"),
			filepath.Join(dir, "..", "share", "palid", "models", "default"))
	}
	cands = append(cands, "/usr/share/palid/models/default")
	for _, d := range cands {
		if _, err := os.Stat(filepath.Join(d, "model.gguf")); err == nil {
			return d, nil
		}
	}
	return "", errors.New("no bundled model found (looked in $PALID_MODEL, ./models/default, beside the executable and /usr/share/palid/models/default); pass --model DIR")
}
