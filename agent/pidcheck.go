package agent

import (
	"bytes"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/sseconfd/sseconfd/render"
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
	fields, err := procStatFields(strconv.Itoa(pid))
	if err != nil {
		return 0, time.Time{}, err
	}
	ticks, err := strconv.ParseInt(fields[statStart], 10, 64)
	if err != nil {
		return 0, time.Time{}, fmt.Errorf("/proc/%d/stat: start time: %w", pid, err)
	}
	boot, err := bootTime()
	if err != nil {
		return 0, time.Time{}, err
	}
	since := time.Duration(ticks) * time.Second / clockTicks
	return fields[statState][0], boot.Add(since), nil
}

// Indexes into procStatFields: the fields of /proc/PID/stat from the 3rd.
const (
	statState = 0  // state letter (field 3)
	statUtime = 11 // user CPU time in clock ticks (field 14)
	statStime = 12 // system CPU time (field 15)
	statStart = 19 // start time in clock ticks since boot (field 22)
	statRSS   = 21 // resident pages (field 24)
)

// procStatFields returns the fields of /proc/PID/stat after the command
// name, pid being a number or "self". The name, in parentheses, may hold
// spaces and ')': the fields start after the last ')'.
func procStatFields(pid string) ([]string, error) {
	path := "/proc/" + pid + "/stat"
	data, err := readProc(path, 4096)
	if err != nil {
		return nil, err
	}
	i := bytes.LastIndexByte(data, ')')
	if i < 0 {
		return nil, fmt.Errorf("%s: unexpected format", path)
	}
	fields := strings.Fields(string(data[i+1:]))
	if len(fields) <= statRSS || len(fields[statState]) != 1 {
		return nil, fmt.Errorf("%s: unexpected format", path)
	}
	return fields, nil
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

// readPIDFile reads a pid file, which must be a small regular file (see
// render.ReadRegularFile), and returns its modification time too.
func readPIDFile(path string) ([]byte, time.Time, error) {
	return render.ReadRegularFile(path, maxPIDFile+1)
}

// readProc reads a small file of /proc (see render.ReadRegularFile).
func readProc(path string, size int) ([]byte, error) {
	data, _, err := render.ReadRegularFile(path, size)
	return data, err
}
