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
	"time"
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

// readFileNoPoll is os.ReadFile through ReadRegularFile.
func readFileNoPoll(path string) ([]byte, error) {
	data, _, err := ReadRegularFile(path, 0)
	return data, err
}

// ReadRegularFile reads the regular file at path, at most limit bytes (0:
// all of it), and returns its modification time too. It opens the file
// without blocking and without Go's poller (see openNoPoll), and refuses
// by the descriptor's own stat anything that is not a regular file: a
// FIFO put in place of a destination or a pid file would block the open
// until a writer came, and a device such as /dev/zero would be read until
// memory ran out. Files of /proc stat as empty regular files; they are
// read whole.
func ReadRegularFile(path string, limit int) ([]byte, time.Time, error) {
	fd, err := openRaw(path, syscall.O_RDONLY|syscall.O_NONBLOCK)
	if err != nil {
		return nil, time.Time{}, err
	}
	defer syscall.Close(fd)
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		return nil, time.Time{}, &fs.PathError{Op: "stat", Path: path, Err: err}
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFREG {
		return nil, time.Time{}, fmt.Errorf("%s is not a regular file (%s)", path, fileType(st.Mode))
	}
	size := limit
	if limit == 0 {
		size = 512
		if st.Size > 0 && st.Size < 1<<30 {
			size = int(st.Size) + 1 // one more, to see the end in one read
		}
	}
	data := make([]byte, 0, size)
	for {
		n, err := syscall.Read(fd, data[len(data):cap(data)])
		switch {
		case errors.Is(err, syscall.EINTR):
			continue
		case err != nil:
			return nil, time.Time{}, &fs.PathError{Op: "read", Path: path, Err: err}
		}
		data = data[:len(data)+n]
		if n == 0 || len(data) == limit {
			return data, time.Unix(st.Mtim.Unix()), nil
		}
		if len(data) == cap(data) {
			data = append(data, 0)[:len(data)]
		}
	}
}

// fileType names the type bits of a stat mode as fs.FileMode prints them.
func fileType(mode uint32) string {
	var m fs.FileMode
	switch mode & syscall.S_IFMT {
	case syscall.S_IFIFO:
		m = fs.ModeNamedPipe
	case syscall.S_IFCHR:
		m = fs.ModeDevice | fs.ModeCharDevice
	case syscall.S_IFBLK:
		m = fs.ModeDevice
	case syscall.S_IFDIR:
		m = fs.ModeDir
	case syscall.S_IFSOCK:
		m = fs.ModeSocket
	}
	return m.Type().String()
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
