package agent

import (
	"errors"
	"fmt"
	"io/fs"
	"os"

	"github.com/sseconfd/sseconfd/render"
)

// dryRun writes to Options.DiffOut a unified diff of each file whose
// content would change, and returns those destinations. It writes no file.
// The diffs show rendered content, setting values included: they go to the
// operator's terminal, never to the logs.
func (a *Agent) dryRun(files []render.File) ([]string, error) {
	var changed []string
	for _, f := range files {
		old, err := os.ReadFile(f.Path)
		oldName := f.Path + " (on disk)"
		if errors.Is(err, fs.ErrNotExist) {
			old, oldName = nil, "/dev/null"
		} else if err != nil {
			return changed, fmt.Errorf("dry run: %w", err)
		}
		if string(old) == string(f.Content) {
			continue
		}
		changed = append(changed, f.Path)
		if a.opts.DiffOut == nil {
			continue
		}
		if err := writeUnifiedDiff(a.opts.DiffOut, oldName, f.Path+" (rendered)", old, f.Content); err != nil {
			return changed, fmt.Errorf("dry run: write diff: %w", err)
		}
	}
	return changed, nil
}
