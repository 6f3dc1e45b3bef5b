// Package tap is the subset of github.com/mndrix/tap-go (not packaged in
// Debian) that runtime-tools' validation suite and runtimetest call: a TAP 13
// writer with plans, ok/not ok lines, SKIP directives, diagnostics and
// YAML blocks (written as indented JSON, which is valid YAML, as tap-go's
// default build does).
package tap

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strings"
)

// T holds the number of the next test point and where output goes.
type T struct {
	nextTestNumber *int

	// TODO marks test points with the TODO directive.
	TODO bool

	// Writer receives the TAP stream; nil means os.Stdout.
	Writer io.Writer
}

// New returns a test state whose first test point is number 1.
func New() *T {
	n := 1
	return &T{nextTestNumber: &n}
}

func (t *T) w() io.Writer {
	if t.Writer == nil {
		return os.Stdout
	}
	return t.Writer
}

func (t *T) printf(format string, a ...interface{}) {
	fmt.Fprintf(t.w(), format, a...)
}

// Header writes the TAP version line and, when testCount > 0, the plan.
func (t *T) Header(testCount int) {
	t.printf("TAP version 13\n")
	if testCount > 0 {
		t.printf("1..%d\n", testCount)
	}
}

// Ok writes one test point that passed when test is true.
func (t *T) Ok(test bool, description string) {
	ok := "ok"
	if !test {
		ok = "not ok"
	}
	if t.TODO {
		t.printf("%s %d # TODO %s\n", ok, *t.nextTestNumber, description)
	} else {
		t.printf("%s %d - %s\n", ok, *t.nextTestNumber, description)
	}
	(*t.nextTestNumber)++
}

// Fail writes a failed test point.
func (t *T) Fail(description string) { t.Ok(false, description) }

// Pass writes a passed test point.
func (t *T) Pass(description string) { t.Ok(true, description) }

// Count is the number of test points written so far.
func (t *T) Count() int { return *t.nextTestNumber - 1 }

// AutoPlan writes the plan for the test points written so far.
func (t *T) AutoPlan() { t.printf("1..%d\n", t.Count()) }

func escapeNewlines(s string) string {
	return strings.Replace(strings.TrimRight(s, "\n"), "\n", "\n# ", -1)
}

// Diagnostic writes a (possibly multi-line) comment.
func (t *T) Diagnostic(message string) { t.printf("# %s\n", escapeNewlines(message)) }

// Diagnosticf writes a formatted (possibly multi-line) comment.
func (t *T) Diagnosticf(format string, a ...interface{}) {
	t.printf("# "+escapeNewlines(format)+"\n", a...)
}

// Skip writes count skipped test points.
func (t *T) Skip(count int, description string) {
	for i := 0; i < count; i++ {
		t.printf("ok %d # SKIP %s\n", *t.nextTestNumber, description)
		(*t.nextTestNumber)++
	}
}

// Todo returns a copy of the state whose test points carry TODO.
func (t *T) Todo() *T {
	c := *t
	c.TODO = true
	return &c
}

// YAML writes message as an indented YAML block under the last test point.
func (t *T) YAML(message interface{}) error {
	b, err := json.MarshalIndent(message, "  ", "  ")
	if err != nil {
		return err
	}
	t.printf("  ---\n  %s\n  ...\n", b)
	return nil
}
