// Package atomicfile replaces a file whole or not at all: a temporary file
// beside it, written, given its mode, synced, then renamed over it. A
// reader sees the old bytes or the new, never a part; a crash leaves at
// most a temporary file, which the next write does not reuse.
package atomicfile

import (
	"os"
	"path/filepath"
)

// Write replaces path with data, mode mode.
func Write(path string, data []byte, mode os.FileMode) error {
	tmp, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name()) // after a successful rename, a no-op
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(mode); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	return os.Rename(tmp.Name(), path)
}
