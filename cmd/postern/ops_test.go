package main

import (
	"bytes"
	"errors"
	"flag"
	"net"
	"strings"
	"testing"
)

func TestHelpOutput(t *testing.T) {
	var stdout, stderr bytes.Buffer
	for _, tc := range []struct {
		args []string
		want *bytes.Buffer
	}{
		{nil, &stderr},
		{[]string{"--help"}, &stdout},
		{[]string{"--data", "x", "-h"}, &stdout},
		{[]string{"-help"}, &stdout},
		{[]string{"--", "--help"}, &stderr},
		{[]string{"--bogus"}, &stderr},
	} {
		if got := helpOutput(tc.args, &stdout, &stderr); got != tc.want {
			t.Errorf("helpOutput(%q) picked the wrong stream", tc.args)
		}
	}
	if parseExit(flag.ErrHelp) != 0 || parseExit(errors.New("flag provided but not defined")) != 2 {
		t.Error("parseExit")
	}
}

func TestCheckConfigArgs(t *testing.T) {
	for _, tc := range []struct {
		args   []string
		global string
		code   int
	}{
		{nil, "", 2},
		{[]string{"a.toml", "b.toml"}, "", 2},
		{[]string{"--help"}, "", 0},
		{[]string{"/nonexistent/postern.toml"}, "", 1},
		{nil, "/nonexistent/postern.toml", 1},
	} {
		var out, errOut bytes.Buffer
		if got := checkConfig(tc.args, tc.global, &out, &errOut); got != tc.code {
			t.Errorf("checkConfig(%q, %q) = %d, want %d (%s)", tc.args, tc.global, got, tc.code, errOut.String())
		}
	}
}

func TestDemoBannerText(t *testing.T) {
	addr := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 2587}
	for _, tc := range []struct {
		admin, key string
		want, not  []string
	}{
		{"off", "", []string{"Admin HTTPS listener: off"}, []string{"X-API-Key", "pstn_"}},
		{"127.0.0.1:2443", "pstn_k", []string{"https://127.0.0.1:2443", "  pstn_k\n", "curl --cacert d/tls/cert.pem -H 'X-API-Key: pstn_k' https://127.0.0.1:2443/api/v1/mailboxes"}, nil},
		{":2443", "pstn_k", []string{"https://localhost:2443"}, nil},
		{"127.0.0.1:0", "pstn_k", []string{`"listening role=admin"`}, []string{"curl"}},
	} {
		var out bytes.Buffer
		printDemoBanner(&out, demoBanner{Command: "bin/postern", Data: "d", CA: "d/tls/cert.pem", Submission: addr, Admin: tc.admin, APIKey: tc.key,
			Passwords: map[string]string{"scanner": "pw"}})
		s := out.String()
		for _, w := range append(tc.want, "bin/postern --data d Get-MailboxFolderStatistics", "bin/postern backup --data d", "submissions off,") {
			if !strings.Contains(s, w) {
				t.Errorf("admin %q: banner lacks %q:\n%s", tc.admin, w, s)
			}
		}
		for _, n := range tc.not {
			if strings.Contains(s, n) {
				t.Errorf("admin %q: banner holds %q", tc.admin, n)
			}
		}
	}
}
