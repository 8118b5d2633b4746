package main

import (
	"os"
	"path/filepath"
	"slices"
	"testing"
)

func TestReadContentArgs(t *testing.T) {
	wd := t.TempDir()
	pem := "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
	os.WriteFile(filepath.Join(wd, "app.pem"), []byte(pem), 0o600)
	abs := filepath.Join(wd, "app.pem")
	for _, tt := range []struct {
		name     string
		in, want []string
	}{
		{"relative path", []string{"New-OAuthApp", "-Name", "x", "-Certificate", "app.pem"}, []string{"New-OAuthApp", "-Name", "x", "-Certificate", pem}},
		{"absolute, any case", []string{"Add-OAuthAppCertificate", "-Identity", "x", "-certificate", abs}, []string{"Add-OAuthAppCertificate", "-Identity", "x", "-certificate", pem}},
		{"colon form", []string{"New-OAuthApp", "-Name", "x", "-Certificate:app.pem"}, []string{"New-OAuthApp", "-Name", "x", "-Certificate:" + pem}},
		{"PEM text stays", []string{"New-OAuthApp", "-Certificate", pem}, []string{"New-OAuthApp", "-Certificate", pem}},
		{"missing file stays", []string{"New-OAuthApp", "-Certificate", "nope.pem"}, []string{"New-OAuthApp", "-Certificate", "nope.pem"}},
		{"other parameters are not files", []string{"New-Mailbox", "-Name", "app.pem"}, []string{"New-Mailbox", "-Name", "app.pem"}},
		{"a directory is not read", []string{"New-OAuthApp", "-Certificate", wd}, []string{"New-OAuthApp", "-Certificate", wd}},
		{"unknown cmdlet", []string{"Get-Nothing", "-Certificate", "app.pem"}, []string{"Get-Nothing", "-Certificate", "app.pem"}},
	} {
		if got := readContentArgs(tt.in, wd); !slices.Equal(got, tt.want) {
			t.Errorf("%s: %q", tt.name, got)
		}
	}
}
