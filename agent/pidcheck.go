package agent

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"strconv"
	"strings"
	"syscall"
	"time"
)

// maxPID bounds a pid read from a pid file. Linux pids stay below 2^22
// (the most pid_max allows), and the kernel reads a pid as a 32-bit int:
// a larger number would wrap, and 4294967295 is -1, which kill(2) takes
// as every process the agent may signal.
const maxPID = 1 << 22

// clockTicks is USER_HZ, the unit of start times in /proc/PID/stat; Linux
// fixes it at 100 for every architecture's userspace ABI.
const clockTicks = 100

// pidFileSlack allows for the coarse start time /proc gives (boot time in
// whole seconds) when comparing it with the pid file's modification time.
const pidFileSlack = 2 * time.Second

// notTheTarget returns why pid, read from the target's pid file, cannot be
// the program that wrote it, or "" when nothing says so: it has exited and
// waits to be reaped (a zombie ignores signals), or, without process_name
// to confirm it by name, it started after the pid file was last written
// (a program writes its pid file after it starts, so the file is stale and
// the pid was reused).
func (t *Target) notTheTarget(pid int, written time.Time) string {
	state, start, err := procStat(pid)
	if err != nil {
		return "" // no /proc: the other checks decide
	}
	if state == 'Z' {
		return fmt.Sprintf("process %d has exited (a zombie not yet reaped)", pid)
	}
	if t.cfg.ProcessName != "" {
		return ""
	}
	if start.After(written.Add(pidFileSlack)) {
		return fmt.Sprintf("process %d started %s after the pid file was written (stale pid file; "+
			"set process_name to confirm the program by name instead)", pid, start.Sub(written).Round(time.Second))
	}
	return ""
}

// procStat returns the state letter and start time of pid from /proc.
func procStat(pid int) (state byte, start time.Time, err error) {
	data, err := readProc(fmt.Sprintf("/proc/%d/stat", pid), 4096)
	if err != nil {
		return 0, time.Time{}, err
	}
	// The command name in parentheses may hold spaces and ')': the fields
	// after the last ')' are state (3rd field) ... starttime (22nd).
	i := bytes.LastIndexByte(data, ')')
	fields := strings.Fields(string(data[i+1:]))
	if i < 0 || len(fields) < 20 || len(fields[0]) != 1 {
		return 0, time.Time{}, fmt.Errorf("/proc/%d/stat: unexpected format", pid)
	}
	ticks, err := strconv.ParseInt(fields[19], 10, 64)
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("/proc/%d/stat: start time: %w", pid, err)
	}
	boot, err := bootTime()
	if err != nil {
		return 0, time.Time{}, err
	}
	since := time.Duration(ticks) * time.Second / clockTicks
	return fields[0][0], boot.Add(since), nil
}

// bootTime returns when the machine booted, as now minus /proc/uptime:
// that file is two numbers, where /proc/stat's btime line sits behind a
// line per CPU and per interrupt (a reload reads one or the other), and
// it follows a clock that was stepped since boot as btime does.
func bootTime() (time.Time, error) {
	data, err := readProc("/proc/uptime", 128)
	if err != nil {
		return time.Time{}, err
	}
	now := time.Now()
	first, _, _ := strings.Cut(strings.TrimSpace(string(data)), " ")
	up, err := strconv.ParseFloat(first, 64)
	if err != nil || up < 0 {
		return time.Time{}, fmt.Errorf("/proc/uptime: unexpected format")
	}
	return now.Add(-time.Duration(up * float64(time.Second))), nil
}

// maxPIDFile is the most bytes of a pid file read: a pid and a newline
// need a dozen.
const maxPIDFile = 64

// readPIDFile reads a pid file that must be a small regular file, and
// returns its modification time too. A FIFO would block the reload until
// a writer came (it is opened without blocking, then refused), and a
// device such as /dev/zero would be read until memory ran out. One open,
// one fstat and one read: this runs before every signal.
func readPIDFile(path string) ([]byte, time.Time, error) {
	fd, err := openRaw(path, syscall.O_RDONLY|syscall.O_NONBLOCK)
	if err != nil {
		return nil, time.Time{}, err
	}
	defer syscall.Close(fd)
	var st syscall.Stat_t
	if err := syscall.Fstat(fd, &st); err != nil {
		return nil, time.Time{}, err
	}
	if st.Mode&syscall.S_IFMT != syscall.S_IFREG {
		return nil, time.Time{}, fmt.Errorf("not a regular file (%s)", fileType(st.Mode))
	}
	data, err := readRaw(fd, maxPIDFile+1)
	return data, time.Unix(st.Mtim.Unix()), err
}

// readProc reads a small file of /proc in one read: the kernel gives such
// a file whole to a read with room for it.
func readProc(path string, size int) ([]byte, error) {
	fd, err := openRaw(path, syscall.O_RDONLY)
	if err != nil {
		return nil, err
	}
	defer syscall.Close(fd)
	return readRaw(fd, size)
}

// openRaw opens path without making an os.File: for a regular file Go
// would try, and fail, to add it to the network poller, five system calls
// more an open, on the path between an update and its signal.
func openRaw(path string, flag int) (int, error) {
	for {
		fd, err := syscall.Open(path, flag|syscall.O_CLOEXEC, 0)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			return -1, &fs.PathError{Op: "open", Path: path, Err: err}
		}
		return fd, nil
	}
}

// readRaw reads once, at most size bytes, from fd.
func readRaw(fd, size int) ([]byte, error) {
	buf := make([]byte, size)
	for {
		n, err := syscall.Read(fd, buf)
		if errors.Is(err, syscall.EINTR) {
			continue
		}
		if err != nil {
			return nil, err
		}
		return buf[:n], nil
	}
}

// fileType names the type bits of a stat mode, as fs.FileMode prints them.
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
