package render

import (
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
)

// openNoPoll opens path as os.OpenFile does, without Go's attempt to add
// the file to the network poller. For a regular file or a directory that
// attempt always fails on Linux, after four fcntl calls and an epoll_ctl:
// six system calls an open instead of two (os.NewFile reads the flags
// once), on the path of every update.
func openNoPoll(path string, flag int, perm uint32) (*os.File, error) {
	for {
		fd, err := syscall.Open(path, flag|syscall.O_CLOEXEC, perm)
		switch {
		case err == nil:
			return os.NewFile(uintptr(fd), path), nil
		case errors.Is(err, syscall.EINTR):
			continue
		}
		return nil, &fs.PathError{Op: "open", Path: path, Err: err}
	}
}

// readFileNoPoll is os.ReadFile without the poller, for regular files
// only: the file is opened without blocking and refused by its own
// descriptor's stat if it is not one. A FIFO put in place of a
// destination after its stat would block the open until a writer came,
// and a device such as /dev/zero would be read until memory ran out.
func readFileNoPoll(path string) ([]byte, error) {
	fd, err := openRaw(path, syscall.O_RDONLY|syscall.O_NONBLOCK)
	if err != nil {
		return nil, err
	}
	defer syscall.Close(fd)
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		return nil, &fs.PathError{Op: "stat", Path: path, Err: err}
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFREG {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	size := 512
	if st.Size > 0 && st.Size < 1<<30 {
		size = int(st.Size) + 1 // one more, to see the end in one read
	}
	data := make([]byte, 0, size)
	for {
		n, err := syscall.Read(fd, data[len(data):cap(data)])
		switch {
		case errors.Is(err, syscall.EINTR):
			continue
		case err != nil:
			return nil, &fs.PathError{Op: "read", Path: path, Err: err}
		case n == 0:
			return data, nil
		}
		data = data[:len(data)+n]
		if len(data) == cap(data) {
			data = append(data, 0)[:len(data)]
		}
	}
}

// openRaw opens path with flag and close-on-exec, retrying on EINTR.
func openRaw(path string, flag int) (int, error) {
	for {
		fd, err := syscall.Open(path, flag|syscall.O_CLOEXEC, 0)
		switch {
		case err == nil:
			return fd, nil
		case errors.Is(err, syscall.EINTR):
			continue
		}
		return -1, &fs.PathError{Op: "open", Path: path, Err: err}
	}
}

// createTempNoPoll is os.CreateTemp(dir, prefix+"*") through openNoPoll:
// the file is created with mode 0600 under a name that is prefix followed
// by random digits.
func createTempNoPoll(dir, prefix string) (*os.File, error) {
	for range 10000 {
		name := filepath.Join(dir, prefix+strconv.FormatUint(uint64(rand.Uint32()), 10))
		f, err := openNoPoll(name, syscall.O_RDWR|syscall.O_CREAT|syscall.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) {
			continue
		}
		return f, err
	}
	return nil, &fs.PathError{Op: "createtemp", Path: filepath.Join(dir, prefix+"*"), Err: fs.ErrExist}
}
