// Command legacyapp stands for an older program that knows only how to read
// its config file and read it again on SIGHUP. It writes its pid to a pid
// file and appends one JSON line per read to a record file, so that tests
// and the demo can see exactly which content it saw and when.
package main

import (
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"
	"time"
)

type record struct {
	Reads   int    `json:"reads"`   // 1 at start, then one more per SIGHUP
	Reason  string `json:"reason"`  // "start" or "SIGHUP"
	Content string `json:"content"` // what the file held, "" if it was missing
	Missing bool   `json:"missing"`
	Time    string `json:"time"`
}

func main() {
	file := flag.String("file", "", "config file to read")
	pidFile := flag.String("pid-file", "", "where to write the pid")
	records := flag.String("records", "", "append one JSON line per read here")
	flag.Parse()

	hup := make(chan os.Signal, 16)
	signal.Notify(hup, syscall.SIGHUP)
	term := make(chan os.Signal, 1)
	signal.Notify(term, syscall.SIGTERM, syscall.SIGINT)

	out, err := os.OpenFile(*records, os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		fmt.Fprintln(os.Stderr, "legacyapp:", err)
		os.Exit(1)
	}
	defer out.Close()

	reads := 0
	read := func(reason string) {
		reads++
		data, err := os.ReadFile(*file)
		r := record{Reads: reads, Reason: reason, Content: string(data), Missing: err != nil,
			Time: time.Now().Format(time.RFC3339Nano)}
		line, _ := json.Marshal(r)
		out.Write(append(line, '\n'))
	}
	read("start")
	if err := os.WriteFile(*pidFile, []byte(fmt.Sprintf("%d\n", os.Getpid())), 0o644); err != nil {
		fmt.Fprintln(os.Stderr, "legacyapp:", err)
		os.Exit(1)
	}

	for {
		select {
		case <-hup:
			read("SIGHUP")
		case <-term:
			os.Remove(*pidFile)
			return
		}
	}
}
