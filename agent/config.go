package agent

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"net/url"
	"os"
	"os/user"
	"path/filepath"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/BurntSushi/toml"
	"golang.org/x/sys/unix"
)

// Config is the agent's configuration file, decoded from TOML by LoadConfig.
// The README lists every key with its default.
type Config struct {
	Source    SourceConfig     `toml:"source"`
	Backoff   BackoffConfig    `toml:"backoff"`
	Apply     ApplyConfig      `toml:"apply"`
	Cache     CacheConfig      `toml:"cache"`
	Log       LogConfig        `toml:"log"`
	Status    StatusConfig     `toml:"status"`
	Templates []TemplateConfig `toml:"template"`
	Reloads   []ReloadConfig   `toml:"reload"`

	path  string   // the file it was loaded from, for error messages
	lines keyLines // the line of each key, for error messages
}

// SourceConfig says where the settings come from.
type SourceConfig struct {
	URL                string            `toml:"url"`                  // base URL of the config server; required
	Env                string            `toml:"env"`                  // environment name; required
	TokenFile          string            `toml:"token_file"`           // bearer token, read at each connect
	Headers            map[string]string `toml:"headers"`              // extra request headers
	CAFile             string            `toml:"ca_file"`              // PEM roots to trust; "": the system's
	CertFile           string            `toml:"cert_file"`            // client certificate (PEM)
	KeyFile            string            `toml:"key_file"`             // client key (PEM)
	InsecureSkipVerify bool              `toml:"insecure_skip_verify"` // skip TLS verification; logs a warning
	IdleTimeout        Duration          `toml:"idle_timeout"`         // silent this long: reconnect; 45s
	ResyncInterval     Duration          `toml:"resync_interval"`      // GET /config/{env}; 5m; 0 = off
	MaxEventBytes      ByteSize          `toml:"max_event_bytes"`      // largest event accepted; default 8MiB
	AllowEmpty         bool              `toml:"allow_empty"`          // accept an empty settings map
}

// BackoffConfig shapes the delays between reconnects.
type BackoffConfig struct {
	Min        Duration `toml:"min"`         // first delay; default 500ms
	Max        Duration `toml:"max"`         // longest delay; default 30s
	Factor     float64  `toml:"factor"`      // growth per failure; default 2
	Jitter     *bool    `toml:"jitter"`      // randomise delays; default true
	MaxRetries int      `toml:"max_retries"` // failures in a row before giving up; 0 = never
}

// ApplyConfig controls when updates are applied.
type ApplyConfig struct {
	WaitMin Duration `toml:"wait_min"` // apply once no update came for this long; 0 = at once
	WaitMax Duration `toml:"wait_max"` // but never hold one longer than this; 0 = 4 x wait_min
}

// CacheConfig locates the last-known-good snapshot.
type CacheConfig struct {
	Path string `toml:"path"` // "": no cache
}

// LogConfig chooses the log encoding and level.
type LogConfig struct {
	Format string `toml:"format"` // "console" or "json"; default: console on a terminal, else json
	Level  string `toml:"level"`  // debug, info, warn, error; default info
}

// StatusConfig enables the HTTP status endpoint.
type StatusConfig struct {
	Listen string   `toml:"listen"` // address for /healthz and /metrics; "": off
	Grace  Duration `toml:"grace"`  // /healthz turns 503 after this long disconnected; default 30s
}

// TemplateConfig is one [[template]]: a source rendered to a destination.
type TemplateConfig struct {
	Source       string `toml:"source"`        // template file; required
	Destination  string `toml:"destination"`   // file written; required
	Mode         string `toml:"mode"`          // octal, e.g. "0644"; "": keep existing, new files 0644
	User         string `toml:"user"`          // owner name or uid; "": keep existing
	Group        string `toml:"group"`         // group name or gid; "": keep existing
	CreateDirs   bool   `toml:"create_dirs"`   // create missing parent directories
	Backup       bool   `toml:"backup"`        // keep the previous version as a hidden sibling
	RestoreDrift bool   `toml:"restore_drift"` // put the file back when someone else changes it
	InPlace      bool   `toml:"in_place"`      // write in place when rename cannot work (not atomic)
	MissingKey   string `toml:"missing_key"`   // "error" (default) or "zero"
	Reload       string `toml:"reload"`        // name of a [[reload]] target; "": none
}

// ReloadConfig is one [[reload]] target: how to tell a program to reread.
// A target is reloaded in one of three ways: signal with pid_file, command,
// or exec (the agent runs the program itself and restarts it).
type ReloadConfig struct {
	Name        string `toml:"name"`         // referenced by [[template]] reload; required
	Check       string `toml:"check"`        // shell command run after install; failure rolls the update back
	CheckStaged string `toml:"check_staged"` // run before install, per changed file, with $SSECONFD_STAGED
	Signal      string `toml:"signal"`       // e.g. "SIGHUP"; with pid_file
	PIDFile     string `toml:"pid_file"`     // file holding the pid to signal, read at each reload
	ProcessName string `toml:"process_name"` // refuse a pid whose comm and executable have another name
	Command     string `toml:"command"`      // shell command, instead of signal + pid_file

	// Exec is a command line (run as /bin/sh -c "exec ...") for a program
	// that cannot reload: the agent starts it after the first apply,
	// restarts it when its files change and stops it when the agent stops.
	Exec        string   `toml:"exec"`
	KillTimeout Duration `toml:"kill_timeout"` // exec: SIGTERM, then SIGKILL after this; default 10s
	MaxRestarts *int     `toml:"max_restarts"` // exec: exits per minute before the agent gives up; default 5

	Timeout       Duration `toml:"timeout"`         // for check, check_staged and command; default 30s
	MinInterval   Duration `toml:"min_interval"`    // reloads closer are deferred, not dropped; 0 = none
	ReloadOnStart bool     `toml:"reload_on_start"` // reload after the first apply even if nothing changed
}

// DefaultMaxRestarts is max_restarts when unset.
const DefaultMaxRestarts = 5

// Duration is a time.Duration written in Go's syntax ("45s", "5m").
type Duration struct{ time.Duration }

// UnmarshalText parses a Go duration.
func (d *Duration) UnmarshalText(b []byte) error {
	v, err := time.ParseDuration(string(b))
	if err != nil {
		return fmt.Errorf("want a duration such as \"30s\" or \"5m\", got %q", b)
	}
	if v < 0 {
		return fmt.Errorf("want a duration of zero or more, got %q", b)
	}
	d.Duration = v
	return nil
}

// MarshalText writes d in Go's syntax.
func (d Duration) MarshalText() ([]byte, error) { return []byte(d.String()), nil }

// ByteSize is a size in bytes, written as "8MiB", "512KiB", "1GiB" or a number.
type ByteSize int64

// UnmarshalText parses a size with an optional KiB, MiB or GiB suffix.
func (s *ByteSize) UnmarshalText(b []byte) error {
	text := strings.TrimSpace(string(b))
	mult := int64(1)
	for _, u := range []struct {
		suffix string
		mult   int64
	}{{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30}, {"B", 1}} {
		if strings.HasSuffix(text, u.suffix) {
			text, mult = strings.TrimSpace(strings.TrimSuffix(text, u.suffix)), u.mult
			break
		}
	}
	n, err := strconv.ParseInt(text, 10, 64)
	if err != nil || n <= 0 || n > math.MaxInt64/mult {
		return fmt.Errorf("want a positive size such as \"8MiB\", got %q", b)
	}
	*s = ByteSize(n * mult)
	return nil
}

// LoadConfig reads, decodes and validates the config file at path, and
// fills in defaults. Unknown keys are errors. The returned error lists
// every problem found, each naming the file and the key.
func LoadConfig(path string) (*Config, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	return ParseConfig(path, data)
}

// ParseConfig is LoadConfig on data already read; path names it in errors.
func ParseConfig(path string, data []byte) (*Config, error) {
	c, problems := parseConfig(path, data)
	if len(problems) > 0 {
		return nil, &ConfigError{Problems: problems}
	}
	return c, nil
}

// parseConfig decodes and validates data. It returns the config, with
// defaults, even when there are problems (keys in error left at zero), so
// that the templates can be checked too; nil only on a TOML syntax error.
func parseConfig(path string, data []byte) (*Config, []error) {
	var raw map[string]any
	if _, err := toml.Decode(string(data), &raw); err != nil {
		return nil, []error{syntaxProblem(path, err)}
	}
	c := &Config{path: path, lines: scanKeyLines(data)}
	var problems []error
	checkKeys(raw, reflect.TypeOf(*c), "", func(key, msg string) {
		problems = append(problems, c.problem(key, "%s", msg))
	})

	// What is left has the right keys and types: decode it.
	var buf bytes.Buffer
	if err := toml.NewEncoder(&buf).Encode(raw); err != nil {
		return nil, append(problems, fmt.Errorf("%s: re-encode config: %w", path, err))
	}
	if _, err := toml.Decode(buf.String(), c); err != nil {
		return nil, append(problems, fmt.Errorf("%s: %w", path, err))
	}
	c.setDefaults()
	if src, _ := raw["source"].(map[string]any); src == nil || src["resync_interval"] == nil {
		c.Source.ResyncInterval.Duration = resyncDefault
	}
	problems = append(problems, c.validate()...)
	sortProblems(problems)
	return c, problems
}

// syntaxProblem turns a TOML parse error into a Problem with its line.
func syntaxProblem(path string, err error) error {
	var pe toml.ParseError
	if errors.As(err, &pe) {
		msg := "TOML syntax: " + pe.Message
		if strings.HasPrefix(pe.Message, "expected value but found") {
			msg += ` (a string needs quotes: env = "dev")`
		}
		return &Problem{File: path, Line: pe.Position.Line, Msg: msg}
	}
	return &Problem{File: path, Msg: err.Error()}
}

// problem builds a Problem about key, with the line that sets it.
func (c *Config) problem(key, format string, args ...any) *Problem {
	return &Problem{File: c.path, Line: c.lines.line(key), Key: key, Msg: fmt.Sprintf(format, args...)}
}

// sortProblems orders problems by file and line, keeping the order of
// those without a position.
func sortProblems(problems []error) {
	sort.SliceStable(problems, func(i, j int) bool {
		a, aok := problems[i].(*Problem)
		b, bok := problems[j].(*Problem)
		if !aok || !bok {
			return aok && !bok
		}
		if a.File != b.File {
			return a.File < b.File
		}
		return a.Line < b.Line
	})
}

// ConfigError lists every problem found in a config file and its
// templates, one per line; each is a *Problem when its place is known.
type ConfigError struct {
	Problems []error
}

func (e *ConfigError) Error() string {
	msgs := make([]string, len(e.Problems))
	for i, p := range e.Problems {
		msgs[i] = p.Error()
	}
	return strings.Join(msgs, "\n")
}

// Unwrap returns the individual problems.
func (e *ConfigError) Unwrap() []error { return e.Problems }

func (c *Config) setDefaults() {
	def := func(d *Duration, v time.Duration) {
		if d.Duration == 0 {
			d.Duration = v
		}
	}
	def(&c.Source.IdleTimeout, 45*time.Second)
	if c.Source.MaxEventBytes == 0 {
		c.Source.MaxEventBytes = 8 << 20
	}
	def(&c.Backoff.Min, 500*time.Millisecond)
	def(&c.Backoff.Max, 30*time.Second)
	if c.Backoff.Factor == 0 {
		c.Backoff.Factor = 2
	}
	if c.Backoff.Jitter == nil {
		t := true
		c.Backoff.Jitter = &t
	}
	def(&c.Status.Grace, 30*time.Second)
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
	for i := range c.Templates {
		if c.Templates[i].MissingKey == "" {
			c.Templates[i].MissingKey = "error"
		}
	}
	for i := range c.Reloads {
		r := &c.Reloads[i]
		def(&r.Timeout, 30*time.Second)
		def(&r.KillTimeout, 10*time.Second)
		if r.MaxRestarts == nil {
			n := DefaultMaxRestarts
			r.MaxRestarts = &n
		}
	}
	if c.Apply.WaitMax.Duration == 0 {
		c.Apply.WaitMax.Duration = 4 * c.Apply.WaitMin.Duration
	}
}

// checkSourceURL returns what is wrong with a source.url, or "". The
// message never quotes the URL: it may hold a password. A query or a
// fragment is refused: the agent appends /sse/{env} to the URL, and a
// token in a query would be logged with every failed connect.
func checkSourceURL(raw string) string {
	if !strings.HasPrefix(raw, "http://") && !strings.HasPrefix(raw, "https://") {
		return "want an http:// or https:// URL, such as \"http://127.0.0.1:8080\""
	}
	u, err := url.Parse(raw)
	if err != nil {
		var uerr *url.Error
		if errors.As(err, &uerr) && strings.Contains(uerr.Err.Error(), "invalid port") {
			return "not a valid URL: the port is not a number"
		}
		return "not a valid URL (check the host and any %-escapes)"
	}
	switch {
	case u.Host == "":
		return "want a host, e.g. \"http://127.0.0.1:8080\""
	case u.RawQuery != "" || u.ForceQuery:
		return "want no query (\"?...\"): the agent appends /sse/{env}; put a token in source.token_file"
	case u.Fragment != "" || strings.Contains(raw, "#"):
		return "want no fragment (\"#...\")"
	}
	return ""
}

// checkHeaders returns what is wrong with each of headers that Go's client
// would refuse on every request, sorted by name; a message never quotes a
// value (it may be a key).
func checkHeaders(headers map[string]string) []string {
	var out []string
	for name, value := range headers {
		switch {
		case !isToken(name):
			out = append(out, fmt.Sprintf("%q is not a valid header name", name))
		case strings.EqualFold(name, "Host"):
			out = append(out, fmt.Sprintf("%q is ignored by the HTTP client: put the host in source.url", name))
		case strings.ContainsFunc(value, func(r rune) bool { return (r < ' ' && r != '\t') || r == 0x7f }):
			out = append(out, fmt.Sprintf("the value of %q holds a control character or line break", name))
		}
	}
	sort.Strings(out)
	return out
}

// isToken reports whether s is an HTTP token (RFC 9110), as a header
// name must be.
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 0x7f || c <= ' ' || strings.IndexByte(`"(),/:;<=>?@[\]{}`, c) >= 0 {
			return false
		}
	}
	return true
}

// resyncDefault applies when resync_interval is absent; "0s" turns resync off.
const resyncDefault = 5 * time.Minute

func (c *Config) validate() []error {
	var errs []error
	bad := func(key, format string, args ...any) {
		errs = append(errs, c.problem(key, format, args...))
	}
	if c.Source.URL == "" {
		bad("source.url", "required: the config server's base URL, e.g. \"http://127.0.0.1:8080\"")
	} else if why := checkSourceURL(c.Source.URL); why != "" {
		bad("source.url", "%s", why)
	}
	if d := c.Source.IdleTimeout.Duration; d < time.Second {
		bad("source.idle_timeout",
			"want 1s or more (longer than the server's keep-alive period, 15s for config-server-sse), got %s", d)
	}
	if d := c.Source.ResyncInterval.Duration; d != 0 && d < time.Second {
		bad("source.resync_interval",
			"want \"0s\" (off) or 1s or more, got %s: every agent would fetch the settings that often", d)
	}
	for _, why := range checkHeaders(c.Source.Headers) {
		bad("source.headers", "%s", why)
	}
	if c.Source.Env == "" {
		bad("source.env", "required: the environment to follow, e.g. \"dev\"")
	}
	if (c.Source.CertFile == "") != (c.Source.KeyFile == "") {
		bad("source.cert_file", "cert_file and key_file go together")
	}
	if c.Backoff.Max.Duration < c.Backoff.Min.Duration {
		bad("backoff.max", "must not be shorter than backoff.min (%s)", c.Backoff.Min)
	}
	if c.Backoff.Factor < 1 {
		bad("backoff.factor", "want 1 or more, got %g", c.Backoff.Factor)
	}
	if c.Backoff.MaxRetries < 0 {
		bad("backoff.max_retries", "want 0 (forever) or more, got %d", c.Backoff.MaxRetries)
	}
	switch c.Log.Format {
	case "", "console", "json":
	default:
		bad("log.format", "want \"console\" or \"json\", got %q", c.Log.Format)
	}
	switch c.Log.Level {
	case "debug", "info", "warn", "error":
	default:
		bad("log.level", "want debug, info, warn or error, got %q", c.Log.Level)
	}
	if c.Apply.WaitMax.Duration < c.Apply.WaitMin.Duration {
		bad("apply.wait_max", "must not be shorter than apply.wait_min (%s)", c.Apply.WaitMin)
	}
	if len(c.Templates) == 0 {
		bad("template", "at least one [[template]] is required")
	}

	targets := map[string]bool{}
	for i, r := range c.Reloads {
		key := fmt.Sprintf("reload[%d]", i)
		if r.Name == "" {
			bad(key+".name", "required")
		} else if targets[r.Name] {
			bad(key+".name", "%q is defined twice", r.Name)
		}
		targets[r.Name] = true
		errs = append(errs, c.validateReload(key, r)...)
	}

	dests := map[string]int{}
	roles := c.fileRoles()
	used := map[string]bool{}
	for i, t := range c.Templates {
		key := fmt.Sprintf("template[%d]", i)
		if t.Source == "" {
			bad(key+".source", "required")
		}
		dest := pathKey(t.Destination)
		if t.Destination == "" {
			bad(key+".destination", "required")
		} else if j, dup := dests[dest]; dup {
			bad(key+".destination", "%s is also the destination of template[%d]", t.Destination, j)
		} else if role, ok := roles[dest]; ok {
			bad(key+".destination", "%s is also %s: the agent would overwrite it", t.Destination, role)
		} else {
			dests[dest] = i
			if msg := checkDestDir(t); msg != "" {
				bad(key+".destination", "%s", msg)
			}
		}
		if t.Mode != "" {
			if _, err := parseMode(t.Mode); err != nil {
				bad(key+".mode", "%v", err)
			}
		}
		if _, err := lookupUID(t.User); err != nil {
			bad(key+".user", "%v", err)
		}
		if _, err := lookupGID(t.Group); err != nil {
			bad(key+".group", "%v", err)
		}
		switch t.MissingKey {
		case "error", "zero":
		default:
			bad(key+".missing_key", "want \"error\" or \"zero\", got %q", t.MissingKey)
		}
		if t.Reload != "" {
			used[t.Reload] = true
			if !targets[t.Reload] {
				bad(key+".reload", "no [[reload]] is named %q%s", t.Reload, definedNames(targets))
			}
		}
	}
	for i, r := range c.Reloads {
		if r.Name != "" && !used[r.Name] {
			bad(fmt.Sprintf("reload[%d].name", i),
				"no [[template]] names %q in its reload key, so it would never run", r.Name)
		}
	}
	return errs
}

// fileRoles maps every file the agent reads or writes other than the
// destinations (by pathKey) to what it is, for a message.
func (c *Config) fileRoles() map[string]string {
	roles := map[string]string{}
	if c.path != "" {
		roles[pathKey(c.path)] = "this config file"
	}
	if c.Cache.Path != "" {
		roles[pathKey(c.Cache.Path)] = "the cache (cache.path)"
	}
	for i, t := range c.Templates {
		if t.Source != "" {
			roles[pathKey(t.Source)] = fmt.Sprintf("the source of template[%d]", i)
		}
	}
	return roles
}

// pathKey names the file at p so that two spellings of one file compare
// equal: absolute, cleaned, and with symlinks resolved as far as they
// exist (a destination may not exist yet, its directory usually does).
func pathKey(p string) string {
	if p == "" {
		return ""
	}
	abs, err := filepath.Abs(p)
	if err != nil {
		return filepath.Clean(p)
	}
	if real, err := filepath.EvalSymlinks(abs); err == nil {
		return real
	}
	if dir, err := filepath.EvalSymlinks(filepath.Dir(abs)); err == nil {
		return filepath.Join(dir, filepath.Base(abs))
	}
	return abs
}

// definedNames lists the names of the [[reload]] targets for a message.
func definedNames(targets map[string]bool) string {
	var names []string
	for n := range targets {
		if n != "" {
			names = append(names, strconv.Quote(n))
		}
	}
	if len(names) == 0 {
		return " (there is no [[reload]] at all)"
	}
	sort.Strings(names)
	return " (defined: " + strings.Join(names, ", ") + ")"
}

// checkDestDir reports a destination whose directory is missing (unless
// create_dirs is set) or is not a directory.
func checkDestDir(t TemplateConfig) string {
	dir := filepath.Dir(t.Destination)
	fi, err := os.Stat(dir)
	switch {
	case errors.Is(err, fs.ErrNotExist) && t.CreateDirs:
		return ""
	case errors.Is(err, fs.ErrNotExist):
		return fmt.Sprintf("directory %s does not exist; create it, or set create_dirs = true", dir)
	case err != nil:
		return fmt.Sprintf("cannot check directory %s: %v", dir, err)
	case !fi.IsDir():
		return fmt.Sprintf("%s is not a directory", dir)
	}
	return ""
}

func (c *Config) validateReload(key string, r ReloadConfig) []error {
	var errs []error
	bad := func(k, format string, args ...any) {
		errs = append(errs, c.problem(key+"."+k, format, args...))
	}
	hasSignal := r.Signal != "" || r.PIDFile != ""
	ways := 0
	for _, set := range []bool{hasSignal, r.Command != "", r.Exec != ""} {
		if set {
			ways++
		}
	}
	switch {
	case ways > 1:
		bad("command", "set only one of command, exec, or signal with pid_file; this target sets more than one")
	case ways == 0:
		bad("command", "set command, exec, or signal with pid_file")
	case hasSignal && r.PIDFile == "":
		bad("pid_file", "required with signal")
	case hasSignal && r.Signal == "":
		bad("signal", "required with pid_file, e.g. \"SIGHUP\"")
	case hasSignal:
		sig, err := ParseSignal(r.Signal)
		switch {
		case err != nil:
			bad("signal", "%v", err)
		case sig == syscall.SIGKILL || sig == syscall.SIGSTOP:
			// Neither can be caught: the program dies or freezes at every update.
			bad("signal", "%s cannot be caught, so it never makes a program reload; "+
				"for a program that must be restarted, use exec", r.Signal)
		}
	}
	if *r.MaxRestarts < 0 {
		bad("max_restarts", "want 0 or more, got %d", *r.MaxRestarts)
	}
	return errs
}

// parseMode reads an octal permission string such as "0644".
func parseMode(s string) (fs.FileMode, error) {
	n, err := strconv.ParseUint(s, 8, 32)
	if err != nil || n == 0 || n > 0o777 {
		return 0, fmt.Errorf("want an octal permission such as \"0644\", got %q", s)
	}
	return fs.FileMode(n), nil
}

// lookupUID resolves a user name or number; "" gives -1 (keep).
func lookupUID(name string) (int, error) {
	if name == "" {
		return -1, nil
	}
	if n, err := strconv.Atoi(name); err == nil {
		return n, nil
	}
	u, err := user.Lookup(name)
	if err != nil {
		return 0, fmt.Errorf("no user %q on this machine", name)
	}
	return strconv.Atoi(u.Uid)
}

// lookupGID resolves a group name or number; "" gives -1 (keep).
func lookupGID(name string) (int, error) {
	if name == "" {
		return -1, nil
	}
	if n, err := strconv.Atoi(name); err == nil {
		return n, nil
	}
	g, err := user.LookupGroup(name)
	if err != nil {
		return 0, fmt.Errorf("no group %q on this machine", name)
	}
	return strconv.Atoi(g.Gid)
}

// ParseSignal accepts a signal name as Go knows it, such as "SIGHUP" or
// "SIGUSR1"; the "SIG" prefix may be left out.
func ParseSignal(name string) (syscall.Signal, error) {
	n := strings.ToUpper(name)
	if !strings.HasPrefix(n, "SIG") {
		n = "SIG" + n
	}
	if sig := unix.SignalNum(n); sig != 0 {
		return sig, nil
	}
	return 0, fmt.Errorf("unknown signal %q, want a name such as \"SIGHUP\"", name)
}
