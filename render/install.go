package render

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"syscall"

	"github.com/natefinch/atomic"
	"golang.org/x/sys/unix"
)

// DefaultMode is the mode of a new file whose template sets none.
const DefaultMode fs.FileMode = 0o644

// TempPrefix starts the name of every temporary file the agent creates. The
// leading dot hides it from globs such as nginx's "include conf.d/*.conf".
// A temporary file for destination "app.conf" is ".sseconfd.app.conf.<digits>".
const TempPrefix = ".sseconfd."

// BackupSuffix ends the name of the hidden sibling that keeps a
// destination's previous version when its template sets backup: the backup
// of "app.conf" is ".app.conf.sseconfd-backup". RemoveStale never removes it.
const BackupSuffix = ".sseconfd-backup"

// BackupPath returns where the previous version of dest is kept.
func BackupPath(dest string) string {
	dir, base := filepath.Split(dest)
	return filepath.Join(dir, "."+base+BackupSuffix)
}

// File is one rendered destination to install.
type File struct {
	Path       string      // destination; a symlink is followed and its target replaced
	Content    []byte      // the complete new content
	Mode       fs.FileMode // 0: keep the existing file's mode; DefaultMode for a new file
	UID, GID   int         // -1: keep the existing owner (a new file gets the agent's)
	CreateDirs bool        // create missing parent directories (mode 0755)
	Backup     bool        // keep the replaced version at BackupPath(target)
	InPlace    bool        // when rename cannot work (EBUSY, EXDEV), overwrite in place: not atomic
}

// Notice is something an install did that an operator should hear about,
// though it did not fail.
type Notice struct {
	Path string // the destination
	Msg  string // a constant message, fit for a log line
}

// Messages of the notices.
const (
	NoticeMetadataFixed = "mode or owner drifted; fixed without rewriting the content"
	NoticeInPlace       = "destination cannot be renamed over; written in place, not atomically"
	NoticeUnreadable    = "existing destination unreadable; replaced without keeping it for rollback"
)

// Txn is an update being installed: Stage writes every changed file to a
// hidden temporary file beside its destination, Commit renames them all into
// place, Rollback puts back what was there before, Abort removes what is
// still staged. A Txn is used by one goroutine.
type Txn struct {
	files     []*staged
	committed int // how many of files have been put into place
	notices   []Notice
}

type staged struct {
	File
	target   string      // the real path replaced (after symlinks)
	temp     string      // the staged temporary file, "" once renamed
	backup   string      // the staged backup of old, "" once renamed or unset
	old      *savedFile  // what was there before; nil when the file is new
	mode     fs.FileMode // the mode the file gets
	uid, gid int         // the owner the file gets; -1: the agent's
	inPlace  bool        // Commit had to overwrite the target in place
	open     *os.File    // temp, still open for its fsync (see keptOpen); nil once synced
	held     *os.File    // the file the rename replaces, held open until Abort (see holdOld)
}

// keptOpen is how many staged temporary files one Stage keeps open until
// it fsyncs them, which saves a close and an open each; the others are
// closed after writing and opened again to be synced, so that a thousand
// templates do not need a thousand descriptors.
const keptOpen = 16

// savedFile is a destination's previous state, kept to roll back.
type savedFile struct {
	content    []byte
	mode       fs.FileMode
	uid, gid   int
	unreadable bool // content could not be read: it cannot be put back
	stat       fs.FileInfo
	known      bool // content was not read: the signature says it is what was written
}

// Stage compares each file with what is on disk and writes those that
// differ, with their mode and owner, to fsynced temporary files. A file whose
// content is equal but whose configured mode or owner drifted is fixed in
// place, not staged, and reported by Notices. On any error every temporary
// file is removed, nothing is renamed, and the error names the destination.
// The caller must call Abort (it is harmless after Commit).
func Stage(files []File) (*Txn, error) {
	t := &Txn{}
	for _, f := range files {
		s, err := t.stage(f, len(t.files) < keptOpen)
		if err != nil {
			t.Abort()
			return nil, fmt.Errorf("stage %s: %w", f.Path, err)
		}
		if s == nil {
			continue
		}
		if other := t.sameTarget(s); other != "" {
			s.removeTemps()
			t.Abort()
			return nil, fmt.Errorf("stage %s: it is the same file as %s (%s)", f.Path, other, s.target)
		}
		t.files = append(t.files, s)
	}
	if err := syncTemps(t.files); err != nil {
		t.Abort()
		return nil, fmt.Errorf("sync staged files: %w", err)
	}
	return t, nil
}

// syncTemps fsyncs every staged temporary file, all at once: the
// filesystem then commits them together instead of one journal commit
// after another (fifty files: some fifty milliseconds less on a VM disk).
func syncTemps(files []*staged) error {
	var jobs []func() error
	for _, s := range files {
		if s.open != nil {
			jobs = append(jobs, s.syncOpen)
		} else if s.temp != "" {
			jobs = append(jobs, func() error { return syncFile(s.temp) })
		}
		if s.backup != "" {
			jobs = append(jobs, func() error { return syncFile(s.backup) })
		}
	}
	if len(jobs) == 1 {
		// The usual update: one file. A goroutine would only add the
		// wake-up of another thread to the latency.
		return jobs[0]()
	}
	errs := make([]error, len(jobs))
	var wg sync.WaitGroup
	limit := make(chan struct{}, 16) // bounds the open files and threads
	for i, job := range jobs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			limit <- struct{}{}
			defer func() { <-limit }()
			errs[i] = job()
		}()
	}
	wg.Wait()
	return errors.Join(errs...)
}

// syncOpen fsyncs and closes the temporary file Stage kept open.
func (s *staged) syncOpen() error {
	f := s.open
	s.open = nil
	err := f.Sync()
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("%s: %w", f.Name(), err)
	}
	return nil
}

// syncFile fsyncs the file at path; its error names the path.
func syncFile(path string) error {
	f, err := openNoPoll(path, syscall.O_RDONLY, 0)
	if err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// sameTarget returns the destination already staged that replaces the same
// file as s (two symlinks to one file), or "".
func (t *Txn) sameTarget(s *staged) string {
	for _, o := range t.files {
		if o.target == s.target {
			return o.Path
		}
	}
	return ""
}

// Changed returns the destinations whose content this update replaces.
func (t *Txn) Changed() []string {
	paths := make([]string, len(t.files))
	for i, s := range t.files {
		paths[i] = s.Path
	}
	return paths
}

// Notices returns what Stage and Commit did that did not fail but that an
// operator should know: metadata fixed, a file written in place.
func (t *Txn) Notices() []Notice { return t.notices }

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
// directory. A destination that cannot be renamed over is written in place
// if its File allows it, else the files already replaced are put back and
// the error names the destination and says what to do. If a directory
// cannot be fsynced, the update is put back too: it would not be durable.
func (t *Txn) Commit() error {
	for _, s := range t.files {
		if err := t.replace(s); err != nil {
			if rbErr := t.Rollback(); rbErr != nil {
				err = errors.Join(err, rbErr)
			}
			t.Abort()
			return err
		}
		t.committed++
	}
	if err := syncDirs(t.files); err != nil {
		if rbErr := t.Rollback(); rbErr != nil {
			err = errors.Join(err, rbErr)
		}
		return err
	}
	return nil
}

// replace puts one staged file into place, its backup first.
func (t *Txn) replace(s *staged) error {
	if s.backup != "" {
		if err := atomic.ReplaceFile(s.backup, BackupPath(s.target)); err != nil {
			return fmt.Errorf("keep backup of %s: %w", s.target, err)
		}
		s.backup = ""
	}
	err := atomic.ReplaceFile(s.temp, s.target)
	if err == nil {
		s.temp = ""
		return nil
	}
	if !s.InPlace || !cannotRename(err) {
		return renameError(s.target, err)
	}

	if err := writeInPlace(s.target, s.Content, s.mode, s.uid, s.gid); err != nil {
		// A failed in-place write can leave the file torn: put the old back.
		err = fmt.Errorf("write %s in place: %w", s.target, err)
		s.inPlace = true
		if rbErr := s.restore(); rbErr != nil {
			err = errors.Join(err, fmt.Errorf("restore %s: %w", s.target, rbErr))
		}
		return err
	}
	s.inPlace = true
	os.Remove(s.temp)
	s.temp = ""
	t.notices = append(t.notices, Notice{Path: s.Path, Msg: NoticeInPlace})
	return nil
}

// Rollback restores every committed file to its previous content, mode and
// owner, and removes committed files that did not exist before. It returns
// the errors joined and goes on past each.
func (t *Txn) Rollback() error {
	var errs []error
	for _, s := range t.files[:t.committed] {
		if err := s.restore(); err != nil {
			errs = append(errs, fmt.Errorf("restore %s: %w", s.Path, err))
		}
	}
	t.committed = 0
	if err := syncDirs(t.files); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// Abort removes the temporary files not yet renamed and closes the
// replaced files Stage held open (see holdOld), which frees their blocks:
// call it once the programs are told. It is safe to call more than once
// and after Commit.
func (t *Txn) Abort() {
	for _, s := range t.files {
		s.removeTemps()
	}
}

func (s *staged) removeTemps() {
	if s.open != nil {
		s.open.Close()
		s.open = nil
	}
	if s.held != nil {
		s.held.Close()
		s.held = nil
	}
	for _, p := range []*string{&s.temp, &s.backup} {
		if *p != "" {
			os.Remove(*p)
			*p = ""
		}
	}
}

// stage returns nil when f needs no new content.
func (t *Txn) stage(f File, keepOpen bool) (*staged, error) {
	target, fi, err := resolveStat(f.Path)
	if err != nil {
		return nil, err
	}
	old, err := readExisting(target, f.Content, fi)
	if err != nil {
		return nil, err
	}

	s := &staged{File: f, target: target, old: old, mode: f.Mode, uid: f.UID, gid: f.GID}
	if old == nil {
		if s.mode == 0 {
			s.mode = DefaultMode
		}
		return s, s.writeTemps(keepOpen)
	}

	s.keepUnset(old)
	if old.unreadable {
		t.notices = append(t.notices, Notice{Path: f.Path, Msg: NoticeUnreadable})
	} else if bytes.Equal(old.content, f.Content) {
		fixed, err := fixMetadata(target, old, s.mode, s.uid, s.gid)
		if fixed {
			t.notices = append(t.notices, Notice{Path: f.Path, Msg: NoticeMetadataFixed})
		}
		switch {
		case fixed || err != nil:
			forgetSignature(target)
		case !old.known:
			rememberSignature(target, old.stat, old.content)
		}
		return nil, err
	}
	forgetSignature(target)
	if keepOpen {
		s.holdOld()
	}
	return s, s.writeTemps(keepOpen)
}

// holdOld opens the file the rename will replace (O_PATH: no read, no
// wait on a FIFO) and keeps it open until Abort. A rename over a file
// that nothing holds open frees that file's blocks in the rename itself:
// about 200 us on the bench VM's ext4, as long as the rest of what the
// agent adds to an update, between the rename and the signal. Held, the
// rename takes about 20 us, and the blocks are freed when Abort closes
// it, after the caller has sent its signals. Without the hold nothing is
// lost but time.
func (s *staged) holdOld() {
	fd, err := unix.Open(s.target, unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err == nil {
		s.held = os.NewFile(uintptr(fd), s.target)
	}
}

// keepUnset takes the mode and owner that f leaves unset from old.
func (s *staged) keepUnset(old *savedFile) {
	if s.mode == 0 {
		s.mode = old.mode
	}
	if s.uid < 0 {
		s.uid = old.uid
	}
	if s.gid < 0 {
		s.gid = old.gid
	}
}

// writeTemps writes the new content, and the backup of the old one when
// asked, to temporary files beside the target; Stage fsyncs them.
func (s *staged) writeTemps(keepOpen bool) error {
	if s.CreateDirs {
		if err := mkdirAll(filepath.Dir(s.target)); err != nil {
			return err
		}
	}
	f, err := s.createContentTemp()
	if err == nil {
		s.temp = f.Name()
		if keepOpen {
			s.open = f
		} else if err = f.Close(); err != nil {
			os.Remove(s.temp)
			s.temp = ""
		}
	}
	if errors.Is(err, fs.ErrNotExist) && !s.CreateDirs {
		return fmt.Errorf("directory %s does not exist: create it or set create_dirs = true: %w",
			filepath.Dir(s.target), err)
	}
	if err != nil {
		return err
	}
	if s.Backup && s.old != nil && !s.old.unreadable {
		s.backup, err = createTemp(s.target, s.old.content, s.old.mode, s.old.uid, s.old.gid, false)
		if err != nil {
			s.removeTemps()
			return err
		}
	}
	return nil
}

// resolveStat follows a symlinked destination to the file it points to,
// so the link stays a link. A dangling link, a loop, or a link owned by
// another user is an error naming the path. It also returns the lstat of
// path when path is not a symlink (nil otherwise): it is then the stat of
// the target, and the caller need not take it again.
func resolveStat(path string) (string, fs.FileInfo, error) {
	fi, err := os.Lstat(path)
	if err != nil {
		return path, nil, nil
	}
	if fi.Mode()&fs.ModeSymlink == 0 {
		return path, fi, nil
	}
	target, err := followLink(path)
	return target, nil, err
}

// followLink returns the file the symlink path leads to (see resolve).
func followLink(path string) (string, error) {
	_, err := os.Stat(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "", fmt.Errorf("symlink %s is dangling: create its target or remove the link", path)
	case errors.Is(err, syscall.ELOOP):
		return "", fmt.Errorf("symlink %s is a loop: point it at a regular file", path)
	}
	if err := checkLinkOwners(path); err != nil {
		return "", err
	}
	target, err := filepath.EvalSymlinks(path)
	if err != nil {
		return "", fmt.Errorf("follow symlink %s: %w", path, err)
	}
	return target, nil
}

// checkLinkOwners refuses to follow a chain of symlinks from path if one
// of them is owned by neither root nor the agent's user: another user who
// may write the destination's directory could point it at any file (the
// agent, as root, would replace /etc/shadow with the rendered content).
func checkLinkOwners(path string) error {
	p := path
	for range 40 { // the kernel's limit on links in a row
		fi, err := os.Lstat(p)
		if err != nil || fi.Mode()&fs.ModeSymlink == 0 {
			return nil
		}
		if uid, _ := owner(fi); uid > 0 && uid != os.Geteuid() {
			return fmt.Errorf("symlink %s is owned by uid %d, neither root nor this agent: "+
				"refusing to follow it (whoever owns it chooses which file is replaced)", p, uid)
		}
		next, err := os.Readlink(p)
		if err != nil {
			return nil
		}
		if !filepath.IsAbs(next) {
			next = filepath.Join(filepath.Dir(p), next)
		}
		p = next
	}
	return nil
}

// readFile reads a destination; tests replace it to make a file unreadable.
var readFile = readFileNoPoll

// readExisting returns the current state of path, or nil if it does not
// exist. A regular file whose content cannot be read is returned with
// unreadable set, so that it is replaced rather than trusted. A file whose
// stat matches the signature of want is not read: its content is want. fi,
// if not nil, is a stat of path taken just before.
func readExisting(path string, want []byte, fi fs.FileInfo) (*savedFile, error) {
	if fi == nil {
		var err error
		fi, err = os.Stat(path)
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", path)
	}
	uid, gid := owner(fi)
	old := &savedFile{mode: fi.Mode().Perm(), uid: uid, gid: gid, stat: fi}
	if unchangedSince(path, fi, want) {
		old.content, old.known = want, true
		return old, nil
	}
	var err error
	old.content, err = readFile(path)
	if err != nil {
		old.unreadable = true
	}
	return old, nil
}

func owner(fi fs.FileInfo) (uid, gid int) {
	if st, ok := fi.Sys().(*syscall.Stat_t); ok {
		return int(st.Uid), int(st.Gid)
	}
	return -1, -1
}

// fixMetadata sets mode and owner on an existing file whose content is
// already right, without rewriting it. It reports whether it changed any.
func fixMetadata(path string, old *savedFile, mode fs.FileMode, uid, gid int) (bool, error) {
	fixed := false
	if uid != old.uid || gid != old.gid {
		if err := os.Chown(path, uid, gid); err != nil {
			return false, err
		}
		fixed = true
	}
	if mode != old.mode {
		if err := os.Chmod(path, mode); err != nil {
			return fixed, err
		}
		fixed = true
	}
	return fixed, nil
}

// writeContent writes b to f; tests replace it to fill the disk.
var writeContent = func(f *os.File, b []byte) error {
	_, err := f.Write(b)
	return err
}

// writeTemp writes content to a new hidden file beside target with its
// final mode and owner, fsyncs and closes it, and returns its name.
func writeTemp(target string, content []byte, mode fs.FileMode, uid, gid int) (string, error) {
	return createTemp(target, content, mode, uid, gid, true)
}

// createTemp is writeTemp, with the fsync only when durable is set.
func createTemp(target string, content []byte, mode fs.FileMode, uid, gid int,
	durable bool) (string, error) {
	f, err := createTempFile(target, content, mode, uid, gid)
	if err != nil {
		return "", err
	}
	if durable {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(f.Name())
		return "", err
	}
	return f.Name(), nil
}

// createTempFile writes content to a new temporary file beside target,
// with mode and owner, and returns it open; on error there is no file.
func createTempFile(target string, content []byte, mode fs.FileMode, uid, gid int) (*os.File, error) {
	dir, base := filepath.Split(target)
	f, err := createTempNoPoll(dir, TempPrefix+base+".")
	if err != nil {
		return nil, err
	}
	return fillTemp(f, content, mode, uid, gid)
}

// fillTemp writes content to f, a new and empty temporary file, and gives
// it mode and owner; on error f is closed and removed.
func fillTemp(f *os.File, content []byte, mode fs.FileMode, uid, gid int) (*os.File, error) {
	err := writeContent(f, content)
	if err == nil {
		err = setMetadata(f, mode, uid, gid)
	}
	if err != nil {
		f.Close()
		os.Remove(f.Name())
		return nil, err
	}
	return f, nil
}

// setMetadata gives f its owner, then its mode (a chown may clear mode bits).
func setMetadata(f *os.File, mode fs.FileMode, uid, gid int) error {
	if uid >= 0 || gid >= 0 {
		if err := f.Chown(uid, gid); err != nil {
			return err
		}
	}
	return f.Chmod(mode)
}

// writeInPlace overwrites the existing file at path with content, then
// reads it back through path: success means a reader of path sees content.
func writeInPlace(path string, content []byte, mode fs.FileMode, uid, gid int) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := writeContent(f, content); err != nil {
		return err
	}
	if err := f.Truncate(int64(len(content))); err != nil {
		return err
	}
	if err := setMetadata(f, mode, uid, gid); err != nil {
		return err
	}
	if err := f.Sync(); err != nil {
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}

	got, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("read back: %w", err)
	}
	if !bytes.Equal(got, content) {
		return fmt.Errorf("read back %d bytes that differ from the %d written", len(got), len(content))
	}
	return nil
}

// restore puts back what was at s.target before Commit.
func (s *staged) restore() error {
	switch {
	case s.old == nil:
		err := os.Remove(s.target)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	case s.old.unreadable:
		return errors.New("its previous content was unreadable; the new version stays")
	case s.inPlace:
		return writeInPlace(s.target, s.old.content, s.old.mode, s.old.uid, s.old.gid)
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

// cannotRename reports whether a rename failed because the destination can
// never be renamed over, so that writing in place is the only way.
func cannotRename(err error) bool {
	return errors.Is(err, syscall.EBUSY) || errors.Is(err, syscall.EXDEV)
}

// renameError explains the renames that cannot work for a destination.
func renameError(target string, err error) error {
	switch {
	case errors.Is(err, syscall.EBUSY):
		return fmt.Errorf("replace %s: it is a mount point (for example a bind-mounted single file) "+
			"and cannot be renamed over; bind-mount its directory instead, "+
			"or set in_place = true to overwrite it in place (not atomic): %w", target, err)
	case errors.Is(err, syscall.EXDEV):
		return fmt.Errorf("replace %s: its temporary file landed on another filesystem "+
			"(a mount inside the directory?); mount the whole directory instead, "+
			"or set in_place = true to overwrite it in place (not atomic): %w", target, err)
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
	d, err := openNoPoll(dir, syscall.O_RDONLY|syscall.O_DIRECTORY, 0)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}

// mkdirAll creates dir and its missing parents with mode 0755 and fsyncs
// the parent of each directory it created, so they survive a crash.
func mkdirAll(dir string) error {
	var missing []string
	for d := dir; ; d = filepath.Dir(d) {
		if _, err := os.Stat(d); err == nil || d == filepath.Dir(d) {
			break
		}
		missing = append(missing, d)
	}
	if len(missing) == 0 {
		return nil
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for _, d := range missing {
		if err := syncDir(filepath.Dir(d)); err != nil {
			return fmt.Errorf("sync directory %s: %w", filepath.Dir(d), err)
		}
	}
	return nil
}

// RemoveStale deletes the temporary files that a crashed agent left in dir:
// regular files named TempPrefix + name + "." + digits, for each of names
// (base names of destinations), or for any name when none is given.
// Backups and every other file are left alone; so are the temporary files
// of other destinations, which another agent writing to the same directory
// may be about to rename into place. It returns the paths it removed.
func RemoveStale(dir string, names ...string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var removed []string
	for _, e := range entries {
		if !e.Type().IsRegular() || !IsTemp(e.Name()) || !tempOfAny(e.Name(), names) {
			continue
		}
		p := filepath.Join(dir, e.Name())
		if err := os.Remove(p); err == nil {
			removed = append(removed, p)
		}
	}
	if len(removed) > 0 {
		if err := syncDir(dir); err != nil {
			return removed, fmt.Errorf("sync directory %s: %w", dir, err)
		}
	}
	return removed, nil
}

// tempOfAny reports whether temp, a temporary file's name, was made for one
// of names; any name matches when names is empty.
func tempOfAny(temp string, names []string) bool {
	if len(names) == 0 {
		return true
	}
	base := temp[len(TempPrefix):strings.LastIndexByte(temp, '.')]
	for _, n := range names {
		if n == base {
			return true
		}
	}
	return false
}

// IsTemp reports whether a file name is one of the agent's temporary files.
func IsTemp(name string) bool {
	if !strings.HasPrefix(name, TempPrefix) || strings.HasSuffix(name, BackupSuffix) {
		return false
	}
	i := strings.LastIndexByte(name, '.')
	digits := name[i+1:]
	if i < len(TempPrefix) || digits == "" {
		return false
	}
	for _, c := range digits {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}
