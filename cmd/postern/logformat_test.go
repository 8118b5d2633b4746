package main

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
)

// TestNewLogger: --log-format text writes key=value lines, json one
// object per line, anything else is an error naming the setting.
func TestNewLogger(t *testing.T) {
	for _, tc := range []struct {
		format  string
		wantErr bool
		check   func(string) bool
	}{
		{"text", false, func(s string) bool { return strings.Contains(s, "msg=hello session=ABC") }},
		{"", false, func(s string) bool { return strings.Contains(s, "msg=hello session=ABC") }},
		{"json", false, func(s string) bool {
			var m map[string]any
			return json.Unmarshal([]byte(s), &m) == nil && m["msg"] == "hello" && m["session"] == "ABC"
		}},
		{"xml", true, nil},
	} {
		var buf bytes.Buffer
		log, _, err := newLogger(tc.format, "info", &buf)
		if tc.wantErr {
			if err == nil || !strings.Contains(err.Error(), "log_format") {
				t.Errorf("%q: err %v", tc.format, err)
			}
			continue
		}
		if err != nil {
			t.Fatalf("%q: %v", tc.format, err)
		}
		log.Info("hello", "session", "ABC")
		if !tc.check(buf.String()) {
			t.Errorf("%q: %q", tc.format, buf.String())
		}
	}
}
