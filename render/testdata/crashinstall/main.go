// Command crashinstall installs versioned files in a loop until it is
// killed. render's crash test kills it with SIGKILL at random moments and
// checks that every destination is always one complete version.
//
// Each file is -size bytes; its first and last lines are both
// "version <20 digits>", the same number in every file of one update.
// At start it removes the temporary files a killed run left behind; with
// -clean it stops there.
package main

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/sseconfd/sseconfd/render"
)

// Marker is the format of a file's first and last line.
const Marker = "version %020d\n"

func main() {
	dir := flag.String("dir", "", "directory of the destinations")
	files := flag.Int("files", 3, "destinations per update")
	size := flag.Int("size", 1<<20, "bytes per file")
	clean := flag.Bool("clean", false, "remove stale temporary files and exit")
	flag.Parse()

	if _, err := render.RemoveStale(*dir); err != nil {
		fail(err)
	}
	if *clean {
		return
	}
	fmt.Println("ready")
	content := make([]byte, *size)
	for i := range content {
		content[i] = byte('a' + i%26)
	}
	for v := time.Now().UnixNano(); ; v++ {
		if err := installVersion(*dir, *files, content, v); err != nil {
			fail(err)
		}
	}
}

// installVersion installs version v into every destination in one update.
func installVersion(dir string, n int, content []byte, v int64) error {
	marker := fmt.Sprintf(Marker, v)
	copy(content, marker)
	copy(content[len(content)-len(marker):], marker)
	files := make([]render.File, n)
	for i := range files {
		files[i] = render.File{
			Path: filepath.Join(dir, fmt.Sprintf("dest%d.conf", i)), Content: content, UID: -1, GID: -1,
		}
	}
	txn, err := render.Stage(files)
	if err != nil {
		return err
	}
	defer txn.Abort()
	return txn.Commit()
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "crashinstall:", err)
	os.Exit(1)
}
