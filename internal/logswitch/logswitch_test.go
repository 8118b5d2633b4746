package logswitch

import (
	"bytes"
	"encoding/json"
	"strings"
	"sync"
	"testing"
)

// TestSwitch: a level or format change applies to the loggers made before
// it, their With attributes and groups kept; an invalid value changes
// nothing.
func TestSwitch(t *testing.T) {
	var buf bytes.Buffer
	log, sw, err := New(&buf, "text", "info")
	if err != nil {
		t.Fatal(err)
	}
	derived := log.With("component", "queue").WithGroup("g")
	derived.Debug("hidden")
	derived.Info("one", "k", 1)
	if got := buf.String(); strings.Contains(got, "hidden") || !strings.Contains(got, "msg=one component=queue g.k=1") {
		t.Fatalf("text: %q", got)
	}
	buf.Reset()

	if err := sw.Set("json", "debug"); err != nil {
		t.Fatal(err)
	}
	derived.Debug("two", "k", 2)
	var m map[string]any
	if err := json.Unmarshal(buf.Bytes(), &m); err != nil {
		t.Fatalf("json: %v: %q", err, buf.String())
	}
	if m["msg"] != "two" || m["component"] != "queue" || m["g"].(map[string]any)["k"] != float64(2) {
		t.Fatalf("json record %v", m)
	}
	buf.Reset()

	for _, bad := range [][2]string{{"xml", "info"}, {"text", "loud"}} {
		if err := sw.Set(bad[0], bad[1]); err == nil {
			t.Errorf("Set(%q, %q) accepted", bad[0], bad[1])
		}
	}
	log.Debug("still json")
	if !strings.HasPrefix(buf.String(), "{") {
		t.Errorf("an invalid Set changed the format: %q", buf.String())
	}
	if _, _, err := New(&buf, "yaml", "info"); err == nil || !strings.Contains(err.Error(), "log_format") {
		t.Errorf("New with a bad format: %v", err)
	}
}

// TestSwitchConcurrent: logging while the format changes is race-free
// (run with -race).
func TestSwitchConcurrent(t *testing.T) {
	var mu sync.Mutex
	w := writerFunc(func(p []byte) (int, error) { mu.Lock(); defer mu.Unlock(); return len(p), nil })
	log, sw, _ := New(w, "text", "info")
	var wg sync.WaitGroup
	for i := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l := log.With("worker", i)
			for range 200 {
				l.Info("x")
			}
		}()
	}
	for i := range 50 {
		sw.Set([]string{"text", "json"}[i%2], []string{"info", "debug"}[i%2])
	}
	wg.Wait()
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
