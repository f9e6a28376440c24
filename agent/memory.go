package agent

import (
	"os"
	"runtime/debug"
	"sync"
)

// Large settings and the garbage collector.
//
// Decoded, a settings map takes about 3.5 times its JSON (100,000 keys:
// 2.4 MB of JSON, 8.4 MB of map), and it stays live through a whole apply,
// beside the files rendered from it. Go's collector lets the heap grow to
// twice what was live at its last cycle (GOGC=100), so the map alone sets
// aside another 8 MB of heap that only garbage ever fills: at 100,000 keys
// that was a third of the agent's peak RSS. While the newest settings
// received are over largeSettings bytes of JSON, an agent with
// Options.TuneGC runs with GOGC=25 instead; below it, with the default
// again. An operator's GOGC in the environment is left alone.
//
// Measured on the bench's 100,000-key fixture (`sseconfd once`, one
// template over the whole map, twelve runs each): peak RSS 38-41 MiB with
// the default, 32-35 with GOGC=50, 30-31 with 35, 29-32 with 25; the
// process took 280-320 ms in every case, within the noise.
// Small settings keep the default: their heap is the runtime's 4 MB
// minimum, and halving it would double the collections in the latency
// path for nothing.
const (
	largeSettings  = 1 << 20
	largeGCPercent = 25
)

// gcTuning is the process's one tuner: GOGC is the process's, and a
// program may run several agents.
var gcTuning gcTuner

type gcTuner struct {
	sync.Mutex
	tight   bool
	checked bool
	ours    bool         // GOGC is not set in the environment
	normal  int          // the percent in force before the first change
	large   map[any]bool // the owners whose newest settings are large
}

// tuneGC returns the function an owner (an agent) tells the size in bytes
// of JSON of each event, fetched body or cache file read at start, before
// it is decoded: one over largeSettings lowers GOGC at once, so that the
// decode is covered too. The function that returns is told whether the
// payload was taken as the owner's newest settings; GOGC then stays low
// while any owner's newest settings are large. A rejected payload, or a
// resync's body that an event overtook, is not taken: it changes nothing,
// whatever its size.
func tuneGC(owner any) func(size int) (taken func(ok bool)) {
	g := &gcTuning
	return func(size int) func(bool) {
		g.Lock()
		g.set(size > largeSettings || len(g.large) > 0)
		g.Unlock()
		return func(ok bool) {
			g.Lock()
			defer g.Unlock()
			if ok && size > largeSettings {
				if g.large == nil {
					g.large = map[any]bool{}
				}
				g.large[owner] = true
			} else if ok {
				delete(g.large, owner)
			}
			g.set(len(g.large) > 0)
		}
	}
}

// set lowers GOGC (tight) or puts back the percent it replaced, unless
// GOGC is set in the environment. g is locked.
func (g *gcTuner) set(tight bool) {
	if !g.checked {
		g.checked = true
		_, set := os.LookupEnv("GOGC")
		g.ours = !set
	}
	if !g.ours || tight == g.tight {
		return
	}
	g.tight = tight
	if tight {
		g.normal = debug.SetGCPercent(largeGCPercent)
	} else {
		debug.SetGCPercent(g.normal)
	}
}

// sized returns what the agent's streams tell each payload's size to:
// tuneGC with Options.TuneGC, else nil.
func (a *Agent) sized() func(int) func(bool) {
	if !a.opts.TuneGC {
		return nil
	}
	return tuneGC(a)
}

// sizeCache tells sized the size of the cache file before it is read,
// and returns what to tell whether it was read: settings rendered from the
// cache at start are the newest the agent has. The file's few bytes of
// env, hash and time beside the settings do not matter against
// largeSettings.
func (a *Agent) sizeCache() (read func(ok bool)) {
	none := func(bool) {}
	sized := a.sized()
	if sized == nil {
		return none
	}
	fi, err := os.Stat(a.cfg.Cache.Path)
	if err != nil || !fi.Mode().IsRegular() {
		return none // ReadCache says why
	}
	return sized(int(fi.Size()))
}
