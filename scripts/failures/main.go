// Command failures prints, for each failed test of a go test -json event
// file (gotestsum's --jsonfile), the first line of each message its test
// printed (t.Error, t.Fatal, t.Log), and not their continuation lines (the
// daemons' logs the tests dump on failure): what scripts/test.sh prints last
// when the namespace tests fail, so that the end of a long output says why.
//
//	go run ./scripts/failures EVENTS.json
package main

import (
	"bufio"
	"encoding/json"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strings"
)

// message is the first line of a test's message: four spaces, the file
// and line, then the text (continuation lines have eight).
var message = regexp.MustCompile(`^ {4}[\w.-]+\.go:\d+: `)

const (
	perTest = 30  // messages shown per failed test
	width   = 300 // characters shown per message
)

type event struct {
	Action  string
	Package string
	Test    string
	Output  string
}

func main() {
	if len(os.Args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: failures EVENTS.json")
		os.Exit(2)
	}
	f, err := os.Open(os.Args[1])
	if err != nil {
		fmt.Fprintln(os.Stderr, "failures:", err)
		os.Exit(1)
	}
	defer f.Close()
	lines := map[string][]string{}
	var failed []string
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 16<<20)
	for sc.Scan() {
		var e event
		if json.Unmarshal(sc.Bytes(), &e) != nil || e.Test == "" {
			continue
		}
		key := e.Package + " " + e.Test
		switch e.Action {
		case "output":
			if l := strings.TrimRight(e.Output, "\n"); message.MatchString(l) {
				lines[key] = append(lines[key], l)
			}
		case "fail":
			failed = append(failed, key)
		}
	}
	if err := sc.Err(); err != nil {
		fmt.Fprintln(os.Stderr, "failures:", err)
		os.Exit(1)
	}
	slices.Sort(failed)
	for _, key := range failed {
		fmt.Printf("--- %s\n", key)
		ls := lines[key]
		for i, l := range ls {
			if i == perTest {
				fmt.Printf("    ... %d more\n", len(ls)-perTest)
				break
			}
			if len(l) > width {
				l = l[:width] + " ..."
			}
			fmt.Println(l)
		}
	}
}
