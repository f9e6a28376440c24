// Package configserver is a stand-in for config-server-sse: the same HTTP
// API, held in memory, for demonstrations and tests. It loads one settings
// map per environment from application-<env>.yml files and serves
//
//	GET  /sse/{env}                  event stream of {"settings": {...}}
//	GET  /config/{env}               the bare settings object, or 404
//	POST /config                     {"env": ..., "settings": {...}}
//	GET  /config/history/{env}       every version, oldest first, or 404
//	GET  /config/version/{env}/{n}   version n (from 1), 400 out of range
//
// Like the real server it sends the current settings on connect, a comment
// as keep-alive, keeps no event ids, and drops events for a subscriber whose
// queue of QueueSize is full.
package configserver

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"
	"unicode/utf8"

	sse "github.com/tmaxmax/go-sse"
	"go.yaml.in/yaml/v3"
)

// QueueSize is how many events wait for a slow subscriber before newer
// ones are dropped.
const QueueSize = 32

// Server holds the environments and their subscribers. It is an
// http.Handler and safe for concurrent use.
type Server struct {
	// KeepAlive is the period of the keep-alive comment; default 15s.
	KeepAlive time.Duration

	mux  *http.ServeMux
	mu   sync.Mutex
	envs map[string]*environment
}

type environment struct {
	history []version
	subs    map[chan []byte]struct{}
}

type version struct {
	Config    versionConfig `json:"config"`
	Version   int           `json:"version"`
	Timestamp time.Time     `json:"timestamp"`
}

type versionConfig struct {
	Settings json.RawMessage `json:"settings"`
}

// New returns a server with no environments.
func New() *Server {
	s := &Server{KeepAlive: 15 * time.Second, envs: map[string]*environment{}, mux: http.NewServeMux()}
	s.mux.HandleFunc("GET /sse/{env}", s.serveStream)
	s.mux.HandleFunc("GET /config/{env}", s.serveConfig)
	s.mux.HandleFunc("POST /config", s.servePost)
	s.mux.HandleFunc("GET /config/history/{env}", s.serveHistory)
	s.mux.HandleFunc("GET /config/version/{env}/{n}", s.serveVersion)
	return s
}

// LoadDir reads every application-<env>.yml (or .yaml) file in dir.
func (s *Server) LoadDir(dir string) error {
	paths, err := filepath.Glob(filepath.Join(dir, "application-*.y*ml"))
	if err != nil {
		return err
	}
	for _, p := range paths {
		base := filepath.Base(p)
		env := strings.TrimSuffix(strings.TrimSuffix(strings.TrimPrefix(base, "application-"), ".yml"), ".yaml")
		data, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		settings, err := decodeYAML(data)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		if settings == nil {
			settings = map[string]any{}
		}
		raw, err := json.Marshal(settings)
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		s.Set(env, raw)
	}
	return nil
}

// decodeYAML decodes a settings file. An unquoted date stays the text it
// is, as config-server-sse's YAML reader has no timestamp type: yaml.v3
// alone would make 2024-01-02 a time and send "2024-01-02T00:00:00Z".
func decodeYAML(data []byte) (map[string]any, error) {
	var doc yaml.Node
	if err := yaml.Unmarshal(data, &doc); err != nil {
		return nil, err
	}
	datesAsText(&doc)
	var settings map[string]any
	if err := doc.Decode(&settings); err != nil {
		return nil, err
	}
	return settings, nil
}

// datesAsText tags every timestamp scalar under n as a string.
func datesAsText(n *yaml.Node) {
	if n.Kind == yaml.ScalarNode && n.ShortTag() == "!!timestamp" {
		n.Tag = "!!str"
	}
	for _, c := range n.Content {
		datesAsText(c)
	}
}

// Set stores settings (a JSON object) as env's new version and broadcasts
// it, unless it equals the current version. It reports whether it changed.
func (s *Server) Set(env string, settings json.RawMessage) bool {
	canon, err := canonical(settings)
	if err != nil {
		return false
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.env(env)
	if n := len(e.history); n > 0 && bytes.Equal(e.history[n-1].Config.Settings, canon) {
		return false
	}
	e.history = append(e.history, version{Config: versionConfig{Settings: canon},
		Version: len(e.history) + 1, Timestamp: time.Now().UTC()})
	event := eventData(canon)
	for ch := range e.subs {
		select {
		case ch <- event:
		default: // a slow subscriber loses this event, as with the real server
		}
	}
	return true
}

func (s *Server) env(name string) *environment {
	e := s.envs[name]
	if e == nil {
		e = &environment{subs: map[chan []byte]struct{}{}}
		s.envs[name] = e
	}
	return e
}

// current returns env's latest settings, or nil if env is unknown.
func (s *Server) current(env string) json.RawMessage {
	s.mu.Lock()
	defer s.mu.Unlock()
	e := s.envs[env]
	if e == nil || len(e.history) == 0 {
		return nil
	}
	return e.history[len(e.history)-1].Config.Settings
}

func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

func (s *Server) serveStream(w http.ResponseWriter, r *http.Request) {
	sess, err := sse.Upgrade(w, r)
	if err != nil {
		http.Error(w, "streaming unsupported", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Cache-Control", "no-cache")

	// Subscribe and read the current settings under one lock, so that no
	// update falls between the two.
	env := r.PathValue("env")
	ch := make(chan []byte, QueueSize)
	s.mu.Lock()
	e := s.env(env)
	e.subs[ch] = struct{}{}
	var initial []byte
	if n := len(e.history); n > 0 {
		initial = eventData(e.history[n-1].Config.Settings)
	}
	s.mu.Unlock()
	defer func() {
		s.mu.Lock()
		delete(e.subs, ch)
		if len(e.subs) == 0 && len(e.history) == 0 {
			delete(s.envs, env) // asked for but never posted: forget the name
		}
		s.mu.Unlock()
	}()

	if initial != nil {
		if sendData(sess, initial) != nil {
			return
		}
	} else if sess.Flush() != nil { // send the headers of a silent stream
		return
	}
	tick := time.NewTicker(s.KeepAlive)
	defer tick.Stop()
	for {
		select {
		case <-r.Context().Done():
			return
		case data := <-ch:
			if sendData(sess, data) != nil {
				return
			}
		case <-tick.C:
			m := &sse.Message{}
			m.AppendComment("keep-alive")
			if sess.Send(m) != nil || sess.Flush() != nil {
				return
			}
		}
	}
}

func sendData(sess *sse.Session, data []byte) error {
	m := &sse.Message{}
	m.AppendData(string(data))
	if err := sess.Send(m); err != nil {
		return err
	}
	return sess.Flush()
}

func eventData(settings json.RawMessage) []byte {
	b, _ := json.Marshal(map[string]json.RawMessage{"settings": settings})
	return b
}

func (s *Server) serveConfig(w http.ResponseWriter, r *http.Request) {
	env := r.PathValue("env")
	cur := s.current(env)
	if cur == nil {
		notFound(w, env)
		return
	}
	writeJSON(w, cur)
}

func (s *Server) servePost(w http.ResponseWriter, r *http.Request) {
	var body struct {
		Env      string          `json:"env"`
		Settings json.RawMessage `json:"settings"`
	}
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 64<<20)).Decode(&body); err != nil {
		http.Error(w, "invalid JSON body: "+err.Error(), http.StatusBadRequest)
		return
	}
	if body.Env == "" || len(body.Settings) == 0 || body.Settings[0] != '{' {
		http.Error(w, `body must be {"env": "...", "settings": {...}}`, http.StatusBadRequest)
		return
	}
	if !utf8.Valid(body.Settings) {
		// encoding/json would store U+FFFD in place of the bad bytes.
		http.Error(w, "invalid settings: not valid UTF-8", http.StatusBadRequest)
		return
	}
	if _, err := canonical(body.Settings); err != nil {
		http.Error(w, "invalid settings: "+err.Error(), http.StatusBadRequest)
		return
	}
	s.Set(body.Env, body.Settings)
	writeJSON(w, []byte(`{"status":"ok"}`))
}

func (s *Server) serveHistory(w http.ResponseWriter, r *http.Request) {
	env := r.PathValue("env")
	s.mu.Lock()
	e := s.envs[env]
	var data []byte
	if e != nil && len(e.history) > 0 {
		data, _ = json.Marshal(e.history)
	}
	s.mu.Unlock()
	if data == nil {
		notFound(w, env)
		return
	}
	writeJSON(w, data)
}

func (s *Server) serveVersion(w http.ResponseWriter, r *http.Request) {
	env := r.PathValue("env")
	s.mu.Lock()
	e := s.envs[env]
	var history []version
	if e != nil {
		history = e.history
	}
	s.mu.Unlock()
	if len(history) == 0 {
		notFound(w, env)
		return
	}
	n, err := strconv.Atoi(r.PathValue("n"))
	if err != nil || n < 1 || n > len(history) {
		msg := fmt.Sprintf("version out of range: %s has versions 1 to %d", env, len(history))
		http.Error(w, msg, http.StatusBadRequest)
		return
	}
	writeJSON(w, history[n-1].Config.Settings)
}

func notFound(w http.ResponseWriter, env string) {
	http.Error(w, fmt.Sprintf("environment %s not found", env), http.StatusNotFound)
}

func writeJSON(w http.ResponseWriter, data []byte) {
	w.Header().Set("Content-Type", "application/json")
	w.Write(data)
}

// canonical re-encodes a JSON object with sorted keys and exact numbers, so
// that equal settings compare equal byte for byte.
func canonical(raw json.RawMessage) (json.RawMessage, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	var v map[string]any
	if err := dec.Decode(&v); err != nil {
		return nil, err
	}
	return json.Marshal(v)
}
