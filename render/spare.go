package render

import (
	"os"
	"path/filepath"
	"strconv"
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
// update's path; the next Stage of that destination writes its new
// content into it instead of creating one (a backup never goes into a
// spare). A spare is an ordinary temporary file by its name: RemoveStale
// removes one left by a crash.
//
// A spare is used only if the destination still leads to the file it was
// made beside, its name still leads to the file the agent created, and
// nobody has written to, linked, chmodded or chowned it (its stat is as it
// was made); otherwise it is dropped and a new temporary file is created,
// as without spares.
var spares = struct {
	sync.Mutex
	m map[string]spare // by destination (File.Path)
}{m: map[string]spare{}}

// spare is one waiting temporary file.
type spare struct {
	f      *os.File
	target string         // the real path it was made to replace
	made   syscall.Stat_t // its stat just after it was created
}

// maxSpares bounds the descriptors spares keep open.
const maxSpares = keptOpen

// PrepareSpares creates a spare temporary file beside each destination
// the transaction replaced by rename, unless it has one. It is meant to
// run after the update's signals; errors only mean no spare. It is safe
// to call from several goroutines.
func (t *Txn) PrepareSpares() {
	for _, s := range t.files[:t.committed] {
		if s.inPlace || !roomForSpare(s.Path) {
			continue
		}
		sp, ok := makeSpare(s.target)
		if !ok {
			continue
		}
		if !keepSpare(s.Path, sp) { // another goroutine was quicker
			sp.discard()
		}
	}
}

// roomForSpare reports whether dest has no spare and another may be kept.
func roomForSpare(dest string) bool {
	spares.Lock()
	defer spares.Unlock()
	return roomLocked(dest)
}

// keepSpare stores sp as dest's spare if there is still room for it (see
// roomForSpare); it reports whether sp was kept.
func keepSpare(dest string, sp spare) bool {
	spares.Lock()
	defer spares.Unlock()
	if !roomLocked(dest) {
		return false
	}
	spares.m[dest] = sp
	return true
}

// roomLocked is roomForSpare with spares locked.
func roomLocked(dest string) bool {
	_, have := spares.m[dest]
	return !have && len(spares.m) < maxSpares
}

// makeSpare creates an empty temporary file beside target.
func makeSpare(target string) (spare, bool) {
	dir, base := filepath.Split(target)
	f, err := createTempNoPoll(dir, TempPrefix+base+".")
	if err != nil {
		return spare{}, false
	}
	sp := spare{f: f, target: target}
	if syscall.Fstat(int(f.Fd()), &sp.made) != nil {
		f.Close()
		os.Remove(f.Name())
		return spare{}, false
	}
	return sp, true
}

// createContentTemp is createTempFile for s's new content, written into
// the destination's spare when it has a usable one.
func (s *staged) createContentTemp() (*os.File, error) {
	if f := takeSpare(s.Path, s.target); f != nil {
		return fillTemp(f, s.Content, s.mode, s.uid, s.gid)
	}
	return createTempFile(s.target, s.Content, s.mode, s.uid, s.gid)
}

// takeSpare returns dest's spare, open and checked, if it was made for
// target; else nil, and a spare that cannot be used is dropped.
func takeSpare(dest, target string) *os.File {
	spares.Lock()
	sp, ok := spares.m[dest]
	delete(spares.m, dest)
	spares.Unlock()
	if !ok {
		return nil
	}
	if sp.target == target && sp.untouched() {
		return sp.f
	}
	sp.discard()
	return nil
}

// untouched reports whether the spare's name leads to the file the agent
// made and its stat is as it was then: nobody wrote to, linked, chmodded
// or chowned it (each of these changes ctime too).
func (sp spare) untouched() bool {
	var own, named syscall.Stat_t
	if syscall.Fstat(int(sp.f.Fd()), &own) != nil || syscall.Lstat(sp.f.Name(), &named) != nil {
		return false
	}
	m := sp.made
	return own.Dev == named.Dev && own.Ino == named.Ino &&
		own.Nlink == 1 && own.Size == 0 && own.Mode == m.Mode &&
		own.Uid == m.Uid && own.Gid == m.Gid && own.Ctim == m.Ctim
}

// discard closes the spare and removes it from where it is now: under
// its name, or where a rename of its directory took it.
func (sp spare) discard() {
	if p, ok := sp.whereNow(); ok {
		os.Remove(p)
	}
	sp.f.Close()
}

// whereNow returns a path that leads to the spare now and is a temporary
// file's name: its own name, or the one the kernel gives its descriptor
// after a rename of its directory. A spare removed has none.
func (sp spare) whereNow() (string, bool) {
	var own syscall.Stat_t
	if syscall.Fstat(int(sp.f.Fd()), &own) != nil || own.Nlink == 0 {
		return "", false
	}
	paths := []string{sp.f.Name()}
	if p, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(int(sp.f.Fd()))); err == nil {
		paths = append(paths, p)
	}
	for _, p := range paths {
		var named syscall.Stat_t
		if IsTemp(filepath.Base(p)) && syscall.Lstat(p, &named) == nil &&
			named.Dev == own.Dev && named.Ino == own.Ino {
			return p, true
		}
	}
	return "", false
}

// DropSpares closes and removes the spares of dests; the agent calls it
// with its destinations when it stops or they may have changed. Spares of
// other destinations (another agent's in the same program) are kept.
func DropSpares(dests ...string) {
	var drop []spare
	spares.Lock()
	for _, d := range dests {
		if sp, ok := spares.m[d]; ok {
			drop = append(drop, sp)
			delete(spares.m, d)
		}
	}
	spares.Unlock()
	for _, sp := range drop {
		sp.discard()
	}
}

// SparePaths returns the paths of the spares that exist now.
func SparePaths() []string {
	spares.Lock()
	defer spares.Unlock()
	var paths []string
	for _, sp := range spares.m {
		paths = append(paths, sp.f.Name())
	}
	return paths
}
