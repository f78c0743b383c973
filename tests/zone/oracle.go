// The independent oracle for cronlane's time zones: Go's time package reads the
// same TZif files and continues them with their POSIX rule after the last explicit
// transition. For each zone name on stdin, prints every change of UTC offset
// between 2030 and 2100 as "<zone> <start unix seconds> <offset seconds>" (the
// first line starts at 2030-01-01), or "<zone> error <why>".
package main

import (
	"bufio"
	"fmt"
	"os"
	"time"
)

func main() {
	in := bufio.NewScanner(os.Stdin)
	out := bufio.NewWriter(os.Stdout)
	defer out.Flush()
	from := time.Date(2030, 1, 1, 0, 0, 0, 0, time.UTC)
	until := time.Date(2100, 1, 1, 0, 0, 0, 0, time.UTC)
	for in.Scan() {
		name := in.Text()
		loc, err := time.LoadLocation(name)
		if err != nil {
			fmt.Fprintf(out, "%s error %v\n", name, err)
			continue
		}
		t := from
		last := 1 << 62 // no offset printed yet
		for t.Before(until) {
			start, end := t.In(loc).ZoneBounds()
			_, offset := t.In(loc).Zone()
			if start.Before(from) {
				start = from
			}
			if offset != last { // spans split only by a new year (Go's rule evaluation) are merged
				fmt.Fprintf(out, "%s %d %d\n", name, start.Unix(), offset)
				last = offset
			}
			if end.IsZero() {
				break // no further transitions
			}
			if !end.After(t) {
				end = t.Add(time.Hour) // Go reports an empty span at some rule boundaries: step over it
			}
			t = end
		}
	}
}
