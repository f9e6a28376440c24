package render

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/natefinch/atomic"
)

// DefaultMode is the mode of a new file whose template sets none.
const DefaultMode fs.FileMode = 0o644

// TempPrefix starts the name of every temporary file the agent creates. The
// leading dot hides it from globs such as nginx's "include conf.d/*.conf".
const TempPrefix = ".sseconfd."

// File is one rendered destination to install.
type File struct {
	Path       string      // destination; a symlink is followed and its target replaced
	Content    []byte      // the complete new content
	Mode       fs.FileMode // 0: keep the existing file's mode; DefaultMode for a new file
	UID, GID   int         // -1: keep the existing owner (a new file gets the agent's)
	CreateDirs bool        // create missing parent directories (mode 0755)
}

// Txn is an update being installed: Stage writes every changed file to a
// hidden temporary file beside its destination, Commit renames them all into
// place, Rollback puts back what was there before. A Txn is used by one
// goroutine.
type Txn struct {
	files     []*staged
	committed int // how many of files have been renamed into place
}

type staged struct {
	File
	target string      // the real path replaced (after symlinks)
	temp   string      // the staged temporary file, "" once renamed
	old    *savedFile  // what was there before; nil when the file is new
	mode   fs.FileMode // the mode the file gets
}

// savedFile is a destination's previous state, kept to roll back.
type savedFile struct {
	content  []byte
	mode     fs.FileMode
	uid, gid int
}

// Stage compares each file with what is on disk and writes those that
// differ, with their mode and owner, to fsynced temporary files. A file whose
// content is equal but whose configured mode or owner drifted is fixed in
// place and not staged. On any error every temporary file is removed, nothing
// is renamed, and the error names the destination.
func Stage(files []File) (*Txn, error) {
	t := &Txn{}
	for _, f := range files {
		s, err := stage(f)
		if err != nil {
			t.Abort()
			return nil, fmt.Errorf("stage %s: %w", f.Path, err)
		}
		if s != nil {
			t.files = append(t.files, s)
		}
	}
	return t, nil
}

// Changed returns the destinations whose content this update replaces.
func (t *Txn) Changed() []string {
	paths := make([]string, len(t.files))
	for i, s := range t.files {
		paths[i] = s.Path
	}
	return paths
}

// StagedPath returns the temporary file holding dest's new content, for a
// check that runs before anything is installed, or "" if dest is unchanged.
func (t *Txn) StagedPath(dest string) string {
	for _, s := range t.files {
		if s.Path == dest {
			return s.temp
		}
	}
	return ""
}

// Commit renames every staged file over its destination and fsyncs each
// directory. If a rename fails, the files already replaced are put back and
// the error names the destination that failed.
func (t *Txn) Commit() error {
	for _, s := range t.files {
		if err := atomic.ReplaceFile(s.temp, s.target); err != nil {
			err = renameError(s.target, err)
			t.Rollback()
			t.Abort()
			return err
		}
		s.temp = ""
		t.committed++
	}
	return syncDirs(t.files)
}

// Rollback restores every committed file to its previous content, mode and
// owner, and removes committed files that did not exist before. It returns
// the first error and goes on with the rest.
func (t *Txn) Rollback() error {
	var first error
	for _, s := range t.files[:t.committed] {
		if err := s.restore(); err != nil && first == nil {
			first = fmt.Errorf("restore %s: %w", s.Path, err)
		}
	}
	t.committed = 0
	if err := syncDirs(t.files); err != nil && first == nil {
		first = err
	}
	return first
}

// Abort removes the temporary files not yet renamed. It is safe to call
// more than once and after Commit.
func (t *Txn) Abort() {
	for _, s := range t.files {
		if s.temp != "" {
			os.Remove(s.temp)
			s.temp = ""
		}
	}
}

// stage returns nil when f needs no new content.
func stage(f File) (*staged, error) {
	target, err := resolve(f.Path)
	if err != nil {
		return nil, err
	}
	old, err := readExisting(target)
	if err != nil {
		return nil, err
	}

	s := &staged{File: f, target: target, old: old, mode: f.Mode}
	uid, gid := f.UID, f.GID
	if old != nil {
		if s.mode == 0 {
			s.mode = old.mode
		}
		if uid < 0 {
			uid = old.uid
		}
		if gid < 0 {
			gid = old.gid
		}
		if bytes.Equal(old.content, f.Content) {
			return nil, fixMetadata(target, old, s.mode, uid, gid)
		}
	} else if s.mode == 0 {
		s.mode = DefaultMode
	}

	if f.CreateDirs {
		if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
			return nil, err
		}
	}
	s.temp, err = writeTemp(target, f.Content, s.mode, uid, gid)
	if err != nil {
		return nil, err
	}
	return s, nil
}

// resolve follows a symlinked destination to the file it points to, so the
// link stays a link. A dangling link or a loop is an error naming the path.
func resolve(path string) (string, error) {
	fi, err := os.Lstat(path)
	if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
		return path, nil
	}
	target, err := filepath.EvalSymlinks(path)
	if err == nil {
		return target, nil
	}
	if errors.Is(err, fs.ErrNotExist) {
		return "", fmt.Errorf("symlink %s is dangling: create its target or remove the link", path)
	}
	return "", fmt.Errorf("follow symlink %s: %w", path, err)
}

// readExisting returns the current state of path, or nil if it does not exist.
func readExisting(path string) (*savedFile, error) {
	content, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	uid, gid := owner(fi)
	return &savedFile{content: content, mode: fi.Mode().Perm(), uid: uid, gid: gid}, nil
}

func owner(fi fs.FileInfo) (uid, gid int) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int(st.Uid), int(st.Gid)
	}
	return -1, -1
}

// fixMetadata sets mode and owner on an existing file whose content is
// already right, without rewriting it.
func fixMetadata(path string, old *savedFile, mode fs.FileMode, uid, gid int) error {
	if mode != old.mode {
		if err := os.Chmod(path, mode); err != nil {
			return err
		}
	}
	if uid != old.uid || gid != old.gid {
		if err := os.Chown(path, uid, gid); err != nil {
			return err
		}
	}
	return nil
}

// writeTemp writes content to a new hidden file beside target with its
// final mode and owner, fsyncs and closes it, and returns its name.
func writeTemp(target string, content []byte, mode fs.FileMode, uid, gid int) (name string, err error) {
	dir, base := filepath.Split(target)
	f, err := os.CreateTemp(dir, TempPrefix+base+".*")
	if err != nil {
		return "", err
	}
	defer func() {
		if err != nil {
			f.Close()
			os.Remove(f.Name())
		}
	}()

	if _, err = f.Write(content); err != nil {
		return "", err
	}
	if err = f.Chmod(mode); err != nil {
		return "", err
	}
	if uid >= 0 || gid >= 0 {
		if err = f.Chown(uid, gid); err != nil {
			return "", err
		}
	}
	if err = f.Sync(); err != nil {
		return "", err
	}
	if err = f.Close(); err != nil {
		return "", err
	}
	return f.Name(), nil
}

// restore puts back what was at s.target before Commit.
func (s *staged) restore() error {
	if s.old == nil {
		err := os.Remove(s.target)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	}
	temp, err := writeTemp(s.target, s.old.content, s.old.mode, s.old.uid, s.old.gid)
	if err != nil {
		return err
	}
	if err := atomic.ReplaceFile(temp, s.target); err != nil {
		os.Remove(temp)
		return err
	}
	return nil
}

// renameError explains the renames that cannot work for a destination.
func renameError(target string, err error) error {
	switch {
	case errors.Is(err, syscall.EBUSY):
		return fmt.Errorf("replace %s: it is busy (a mount point or a bind-mounted file) and cannot be renamed over; mount its directory instead: %w", target, err)
	case errors.Is(err, syscall.EXDEV):
		return fmt.Errorf("replace %s: the temporary file is on another filesystem: %w", target, err)
	}
	return fmt.Errorf("replace %s: %w", target, err)
}

// syncDirs fsyncs each distinct parent directory so the renames are durable.
func syncDirs(files []*staged) error {
	seen := map[string]bool{}
	for _, s := range files {
		dir := filepath.Dir(s.target)
		if seen[dir] {
			continue
		}
		seen[dir] = true
		if err := syncDir(dir); err != nil {
			return fmt.Errorf("sync directory %s: %w", dir, err)
		}
	}
	return nil
}

func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// RemoveStale deletes temporary files that a crashed agent left in dir.
// It returns the names it removed.
func RemoveStale(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var removed []string
	for _, e := range entries {
		if e.Type().IsRegular() && strings.HasPrefix(e.Name(), TempPrefix) {
			p := filepath.Join(dir, e.Name())
			if err := os.Remove(p); err == nil {
				removed = append(removed, p)
			}
		}
	}
	return removed, nil
}
