package delegate

import (
	"fmt"
	"os"
)

// statFile checks that path is a regular file.
func statFile(path string) (os.FileInfo, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("not a regular file")
	}
	return fi, nil
}
