package render

import (
	"crypto/sha256"
	"io/fs"
	"os"
	"sync"
	"syscall"
	"time"
)

// A signature remembers what the agent itself last wrote to a destination:
// the stat of the file just after it was put into place and a hash of its
// content. While a later stat gives the same device, inode, size, mtime and
// ctime, nobody has written, renamed over, chmodded or chowned the file
// since (each of these sets ctime, which no user can set back), so an
// unchanged destination is recognised without reading it, as git's index
// does for the work tree.
type signature struct {
	dev, ino     uint64
	size         int64
	mtime, ctime syscall.Timespec
	sum          [sha256.Size]byte
}

// racyWindow is how long after a file's ctime its signature stays untrusted:
// an edit by someone else within the same timestamp tick as the agent's
// own write (a coarse clock, a filesystem keeping seconds) would leave the
// stat unchanged. Such a racy file is read and compared, and its signature
// taken again once the stat is older than the window. Tests shorten it.
var racyWindow = 3 * time.Second

// signatures holds the trusted signature of each destination (its real
// path) that the agent last wrote or compared.
var signatures = struct {
	sync.Mutex
	m map[string]signature
}{m: map[string]signature{}}

// signatureOf returns fi's signature for content, and false when fi is
// not from a syscall stat or its ctime is within racyWindow of now.
func signatureOf(fi fs.FileInfo, content []byte) (signature, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return signature{}, false
	}
	ctime := time.Unix(st.Ctim.Unix())
	if time.Since(ctime) < racyWindow {
		return signature{}, false
	}
	return signature{
		dev: uint64(st.Dev), ino: st.Ino, size: st.Size, mtime: st.Mtim, ctime: st.Ctim,
		sum: sha256.Sum256(content),
	}, true
}

// rememberSignature records that target, as fi describes it, holds content.
// A racy stat forgets the target instead, so that it is read next time.
func rememberSignature(target string, fi fs.FileInfo, content []byte) {
	sig, ok := signatureOf(fi, content)
	signatures.Lock()
	defer signatures.Unlock()
	if ok {
		signatures.m[target] = sig
	} else {
		delete(signatures.m, target)
	}
}

// forgetSignature makes the next Stage of target read it.
func forgetSignature(target string) {
	signatures.Lock()
	delete(signatures.m, target)
	signatures.Unlock()
}

// unchangedSince reports whether target, as fi describes it now, still
// holds exactly content as the agent last wrote or read it.
func unchangedSince(target string, fi fs.FileInfo, content []byte) bool {
	sig, ok := statMatches(target, fi)
	return ok && int64(len(content)) == sig.size && sha256.Sum256(content) == sig.sum
}

// statMatches returns the signature remembered for target if fi, a stat
// of it taken now, matches it.
func statMatches(target string, fi fs.FileInfo) (signature, bool) {
	signatures.Lock()
	sig, ok := signatures.m[target]
	signatures.Unlock()
	if !ok {
		return signature{}, false
	}
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || uint64(st.Dev) != sig.dev || st.Ino != sig.ino || st.Size != sig.size ||
		st.Mtim != sig.mtime || st.Ctim != sig.ctime {
		return signature{}, false
	}
	return sig, true
}

// Holds reports whether the destination path (a symlink is followed)
// still holds the content whose SHA-256 is sum, as the agent last wrote
// or read it, by its stat alone. False means "not known": a signature is
// taken only once the file's ctime is older than the racy window.
func Holds(path string, sum [sha256.Size]byte) bool {
	target, fi, err := resolveStat(path)
	if err != nil {
		return false
	}
	if fi == nil { // a symlink, followed
		if fi, err = os.Stat(target); err != nil {
			return false
		}
	}
	sig, ok := statMatches(target, fi)
	return ok && sig.sum == sum
}
