package render

import (
	"os"
	"path/filepath"
	"sync"
	"syscall"
)

// Spare temporary files.
//
// Creating the temporary file is the slowest step of staging after the
// fsync: on the bench VM's ext4, 85-110 us of the 1.1 ms from an event to
// its rename, as long as the rest of the agent's own work on the update.
// A daemon that has just written a destination is likely to write it
// again, so after a commit it may create the next temporary file beside
// each destination it wrote (Txn.PrepareSpares), empty and open, off the
// update's path; the next Stage of that destination writes into it
// instead of creating one. A spare is an ordinary temporary file by its
// name: RemoveStale removes one left by a crash.
//
// A spare is used only if its name still leads to the file the agent
// created and nobody has written to or linked it; otherwise it is dropped
// and a new temporary file is created, as without spares.
var spares = struct {
	sync.Mutex
	m map[string]*os.File // by target (the real path replaced)
}{m: map[string]*os.File{}}

// maxSpares bounds the descriptors spares keep open.
const maxSpares = keptOpen

// PrepareSpares creates a spare temporary file beside each destination
// the transaction replaced by rename, unless it has one. It is meant to
// run after the update's signals; errors only mean no spare.
func (t *Txn) PrepareSpares() {
	for _, s := range t.files[:t.committed] {
		if s.inPlace {
			continue
		}
		spares.Lock()
		_, have := spares.m[s.target]
		full := len(spares.m) >= maxSpares
		spares.Unlock()
		if have || full {
			continue
		}
		dir, base := filepath.Split(s.target)
		f, err := createTempNoPoll(dir, TempPrefix+base+".")
		if err != nil {
			continue
		}
		spares.Lock()
		spares.m[s.target] = f
		spares.Unlock()
	}
}

// newTemp returns target's spare, or a new temporary file beside it.
func newTemp(target string) (*os.File, error) {
	if f := takeSpare(target); f != nil {
		return f, nil
	}
	dir, base := filepath.Split(target)
	return createTempNoPoll(dir, TempPrefix+base+".")
}

// takeSpare returns target's spare, open and checked, or nil.
func takeSpare(target string) *os.File {
	spares.Lock()
	f := spares.m[target]
	delete(spares.m, target)
	spares.Unlock()
	if f == nil {
		return nil
	}
	var own, named syscall.Stat_t
	ownErr := syscall.Fstat(int(f.Fd()), &own)
	namedErr := syscall.Lstat(f.Name(), &named)
	ours := ownErr == nil && namedErr == nil && own.Dev == named.Dev && own.Ino == named.Ino
	if ours && own.Nlink == 1 && own.Size == 0 {
		return f
	}
	f.Close()
	if ours {
		os.Remove(f.Name()) // written to or linked elsewhere: not trusted
	}
	return nil
}

// DropSpares closes and removes every spare; the agent calls it when it
// stops or its destinations may have changed.
func DropSpares() {
	spares.Lock()
	m := spares.m
	spares.m = map[string]*os.File{}
	spares.Unlock()
	for _, f := range m {
		var own, named syscall.Stat_t
		if syscall.Fstat(int(f.Fd()), &own) == nil && syscall.Lstat(f.Name(), &named) == nil &&
			own.Dev == named.Dev && own.Ino == named.Ino {
			os.Remove(f.Name())
		}
		f.Close()
	}
}

// SparePaths returns the paths of the spares that exist now.
func SparePaths() []string {
	spares.Lock()
	defer spares.Unlock()
	var paths []string
	for _, f := range spares.m {
		paths = append(paths, f.Name())
	}
	return paths
}
